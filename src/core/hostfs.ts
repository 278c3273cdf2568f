/**
 * The host's files, shared by every plugin that writes them (files, kmod, sysctl, dns, pci,
 * systemd, lxc, groups, users): the sandbox root (`--root` / OPD_ROOT), the one atomic write
 * (temp file, fsync, rename, fsync of the directory), and user/group name lookups from one
 * read of /etc/passwd and /etc/group. node:fs only, no processes. Plugins never import each other.
 */
import { ensureDir, TEMP_NAME } from './fsutil.js';
import {
  realpathSync,
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
  fchmodSync,
  fchownSync,
  lstatSync,
  readdirSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ApplyContext, Settings } from './plugin.js';
import { assertApplyContext } from './plugin.js';
import { OpdError } from './errors.js';

/** The sandbox root ('' = the real /). */
export function rootOf(settings: Settings): string {
  const r = typeof settings.root === 'string' ? settings.root : '';
  if (!r || r === '/') return '';
  if (!r.startsWith('/'))
    throw new OpdError('usage', `--root must be an absolute path, got ${JSON.stringify(r)}`, {
      hint: 'pass --root /some/dir (or OPD_ROOT=/some/dir)',
    });
  return r.replace(/\/+$/, '');
}

/** Whether a document path is an absolute, normalized path without `.`/`..` segments or NUL. */
export function isSafePath(p: string): boolean {
  if (!p.startsWith('/') || p.includes('\0') || p.length > 4096) return false;
  if (p === '/') return false;
  const segs = p.slice(1).split('/');
  return segs.every((s) => s !== '' && s !== '.' && s !== '..');
}

/** The host path of a document path under the sandbox root. */
export function hostPath(settings: Settings, p: string): string {
  if (!isSafePath(p))
    throw new OpdError('invalid-document', `unsafe path ${JSON.stringify(p)}`, {
      hint: 'paths are absolute, without . or .. segments',
    });
  return rootOf(settings) + p;
}

/**
 * Under a sandbox root, the nearest existing ancestor of a path must resolve inside the root:
 * a symlink in the sandbox (root/etc → /etc) must not lead writes onto the host.
 */
export function insideRoot(settings: Settings, hp: string, docPath: string): void {
  const root = rootOf(settings);
  if (!root) return;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch {
    return; // the root does not exist yet: nothing in it can be a symlink
  }
  for (let p = dirname(hp); p.length >= root.length; p = dirname(p)) {
    let real: string;
    try {
      real = realpathSync(p);
    } catch {
      continue;
    }
    if (real !== realRoot && !real.startsWith(realRoot + '/'))
      throw new OpdError('refused', `${docPath} leads outside the root ${root} (${p} resolves to ${real})`, {
        hint: 'remove the symlink inside the sandbox root, or apply without --root',
      });
    return;
  }
}

export interface WriteOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  /** Runs on the temp file before the rename; throws to keep the old file. */
  validate?: (tmpPath: string) => Promise<void>;
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* some filesystems cannot fsync a directory */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The name of a temp file beside `target` (`.<name>.opd-<12 hex digits>`, see TEMP_NAME), its
 * directory noted first (ApplyContext.noteTempDir): when a run is killed before the rename, the
 * next run finds the directory in the record and removes what was left there.
 */
export function tempSibling(ctx: ApplyContext, target: string): string {
  assertApplyContext(ctx);
  const dir = dirname(target);
  ctx.noteTempDir(dir);
  return join(dir, `.${basename(target).slice(0, 200)}.opd-${randomBytes(6).toString('hex')}`);
}

/**
 * opd's own leftovers in `dir`: temp files of atomic writes (TEMP_NAME) that a killed run left
 * behind, in a directory reached without a link (one swapped in since the run died leads
 * elsewhere), never a directory. Sorted host paths; nothing is removed here.
 */
export function tempLeftovers(dir: string): string[] {
  let names: string[];
  try {
    if (realpathSync(dir) !== dir) return [];
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => TEMP_NAME.test(n))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => {
      try {
        return !lstatSync(p).isDirectory();
      } catch {
        return false;
      }
    });
}

/** Remove one leftover `tempLeftovers` found (the mutate door: recovery holds an ApplyContext). */
export function removeTempLeftover(ctx: ApplyContext, path: string): void {
  assertApplyContext(ctx);
  if (!TEMP_NAME.test(basename(path))) throw new OpdError('bug', `not a temp file of opd: ${path}`);
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Atomic write: a temp file in the same directory, mode/owner set, fsync, optional
 * validation, rename over the target, fsync of the directory. On any failure the temp file
 * goes and the old file stays.
 */
export async function atomicWrite(
  ctx: ApplyContext,
  target: string,
  data: Buffer | string,
  opts: WriteOptions = {},
): Promise<void> {
  assertApplyContext(ctx);
  const dir = dirname(target);
  ensureDir(dir, 0o755);
  const tmp = tempSibling(ctx, target);
  const fd = openSync(tmp, 'wx', 0o600);
  let done = false;
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (opts.uid !== undefined || opts.gid !== undefined) fchownSync(fd, opts.uid ?? -1, opts.gid ?? -1);
    fchmodSync(fd, opts.mode ?? 0o644);
    fsyncSync(fd);
    closeSync(fd);
    done = true;
    if (opts.validate) await opts.validate(tmp);
    renameSync(tmp, target);
    fsyncDir(dir);
  } catch (err) {
    if (!done) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
}

export interface Accounts {
  uidByName: Map<string, number>;
  nameByUid: Map<number, string>;
  gidByName: Map<string, number>;
  nameByGid: Map<number, string>;
  /** group → members (supplementary, from /etc/group) */
  members: Map<string, string[]>;
  /** user → passwd fields */
  users: Map<string, { uid: number; gid: number; comment: string; home: string; shell: string }>;
  groups: Map<string, { gid: number }>;
}

function readOr(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * One read each of /etc/passwd and /etc/group: under the sandbox root when it has them,
 * else the host's (a sandbox for files usually has no account database of its own).
 */
export function readAccounts(settings: Settings, opts: { strictRoot?: boolean } = {}): Accounts {
  const root = rootOf(settings);
  const pick = (p: string) => {
    const inRoot = root ? readOr(root + p) : undefined;
    if (inRoot !== undefined || (root && opts.strictRoot)) return inRoot ?? '';
    return readOr(p) ?? '';
  };
  const a: Accounts = {
    uidByName: new Map(),
    nameByUid: new Map(),
    gidByName: new Map(),
    nameByGid: new Map(),
    members: new Map(),
    users: new Map(),
    groups: new Map(),
  };
  // the colon-separated rows of a file that have at least n fields and a name
  const rows = (file: string, n: number) =>
    pick(file)
      .split('\n')
      .map((line) => line.split(':'))
      .filter((f) => f.length >= n && f[0]);
  for (const f of rows('/etc/passwd', 7)) {
    const uid = Number(f[2]);
    a.uidByName.set(f[0], uid);
    if (!a.nameByUid.has(uid)) a.nameByUid.set(uid, f[0]);
    a.users.set(f[0], { uid, gid: Number(f[3]), comment: f[4], home: f[5], shell: f[6] });
  }
  for (const f of rows('/etc/group', 4)) {
    const gid = Number(f[2]);
    a.gidByName.set(f[0], gid);
    if (!a.nameByGid.has(gid)) a.nameByGid.set(gid, f[0]);
    a.members.set(f[0], f[3] ? f[3].split(',').filter(Boolean) : []);
    a.groups.set(f[0], { gid });
  }
  return a;
}

/** Read a small text file, undefined when missing. */
export function readText(p: string): string | undefined {
  return readOr(p);
}
