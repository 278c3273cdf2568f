/**
 * The host's files, shared by every plugin that writes them (files, kmod, sysctl, dns, pci,
 * systemd, lxc, users, groups, libvirt): the sandbox root (`--root` / OPD_ROOT), the one door
 * for every path opd writes, removes, chmods or chowns, and user/group name lookups from one
 * read of /etc/passwd and /etc/group. node:fs only, no processes. Plugins never import each other.
 *
 * The doors (each needs the ApplyContext of a run: a dry run cannot reach them):
 *   putFile (atomic write), removePath, makeDir, setMeta (chmod/chown), putSymlink,
 *   renamePath, writeKernelFile (/proc/sys, /sys), withTempFile (a private scratch file for
 *   a tool), checkToolPaths (paths a tool opens itself: useradd --prefix, lxc-create -P).
 * They take the path as the document names it (`/etc/x`); under `--root` the door puts it under
 * the root, and it is resolved from the root one component at a time (core/dirfd.ts): no
 * component may be a symbolic link (the last one only where the door manages the link itself:
 * putSymlink, removePath), the last open uses O_NOFOLLOW, mode and owner are set on the open
 * descriptor, so nothing resolves outside the root and a link planted in a directory another
 * user owns cannot turn root's write elsewhere. ESLint (opd/no-fs-mutation) forbids the raw
 * node:fs mutations in src/plugins and src/host: they come here.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  lchownSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  statfsSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ApplyContext, Settings } from './plugin.js';
import { assertApplyContext } from './plugin.js';
import { OpdError } from './errors.js';
import { Dir, PROC_SUPER_MAGIC, SYSFS_MAGIC, errno, linkRefusal, openRoot, walkDir } from './dirfd.js';

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
  checkPath(p);
  return rootOf(settings) + p;
}

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } = constants;

/** Mode and owner, set on the open descriptor (fchown, then fchmod: a chown clears set-id bits). */
export interface Meta {
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface WriteOptions extends Meta {
  /** Runs on the temp file (its host path) before the rename; throws to keep the old file. */
  validate?: (tmpPath: string) => Promise<void>;
}

/** The parent directory of a document path, held open, and the last component's name. */
interface Parent {
  dir: Dir;
  name: string;
  /** the host path of the target, for messages */
  host: string;
  root: string;
}

function checkPath(p: string): void {
  if (!isSafePath(p))
    throw new OpdError('invalid-document', `unsafe path ${JSON.stringify(p)}`, {
      hint: 'paths are absolute, without . or .. segments',
    });
}

/** Error messages name the host path, not the /proc/self/fd name the door used. */
function named<T>(host: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw renamed(e, host);
  }
}
function renamed(e: unknown, host: string): unknown {
  if (e instanceof Error && errno(e) && typeof e.message === 'string') {
    e.message = e.message.replace(/\/proc\/self\/fd\/\d+(\/[^',]*)?/g, host);
    (e as NodeJS.ErrnoException).path = host;
  }
  return e;
}

/** Open the directory a document path is in, from the root, refusing links; `create` makes missing ones (0755). */
function openParent(ctx: ApplyContext, what: string, p: string, create: boolean): Parent {
  checkPath(p);
  const root = rootOf(ctx.settings);
  const host = root + p;
  const base = named(host, () => openRoot(root));
  try {
    const dir = named(host, () =>
      walkDir(base, posix.dirname(p), { what, target: p, ...(create ? { create: 0o755 } : {}) }),
    );
    return { dir, name: posix.basename(p), host, root };
  } finally {
    base.close();
  }
}

function setOnFd(fd: number, m: Meta): void {
  if (m.uid !== undefined || m.gid !== undefined) fchownSync(fd, m.uid ?? -1, m.gid ?? -1);
  if (m.mode !== undefined) fchmodSync(fd, m.mode);
}

function fsyncQuiet(fd: number): void {
  try {
    fsyncSync(fd);
  } catch {
    /* some filesystems cannot fsync a directory */
  }
}

const tmpName = (name: string) => `.${name.slice(0, 200)}.opd-${randomBytes(6).toString('hex')}`;

/**
 * Atomic write of a whole file: a temp file created O_EXCL|O_NOFOLLOW in the same directory
 * (held open), owner and mode set on its descriptor (default 0644), fsync, optional
 * validation, rename over the target within that directory, fsync of the directory. Missing
 * parent directories are created (0755). On any failure the temp file goes and the old file stays.
 */
export async function putFile(
  ctx: ApplyContext,
  path: string,
  data: Buffer | string,
  opts: WriteOptions = {},
): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  await putFileFrom(ctx, path, async (write) => write(buf), opts);
}

/**
 * The same atomic write, with the content given by `fill` chunk by chunk through `write` (a
 * download streamed to disk). When `fill` throws (a checksum that does not match), the temp file
 * goes and the target is never touched: a reader sees the old file or the whole new one.
 */
export async function putFileFrom(
  ctx: ApplyContext,
  path: string,
  fill: (write: (chunk: Uint8Array) => void) => Promise<void>,
  opts: WriteOptions = {},
): Promise<void> {
  assertApplyContext(ctx);
  const { dir, name, host } = openParent(ctx, 'write', path, true);
  const tmp = tmpName(name);
  let made = false;
  try {
    const fd = named(host, () => openSync(dir.at(tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
    made = true;
    try {
      await fill((chunk) => {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      });
      setOnFd(fd, { uid: opts.uid, gid: opts.gid, mode: opts.mode ?? 0o644 });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (opts.validate) await opts.validate(dir.child(tmp).host);
    named(host, () => renameSync(dir.at(tmp), dir.at(name)));
    made = false;
    fsyncQuiet(dir.fd);
  } catch (e) {
    if (made)
      try {
        unlinkSync(dir.at(tmp));
      } catch {
        /* already gone */
      }
    throw e;
  } finally {
    dir.close();
  }
}

export interface RemoveOptions {
  /** a directory goes with everything in it (never crossing into another filesystem) */
  recursive?: boolean;
  /** only an empty directory goes: one with entries, or anything that is not a directory, stays ("kept") */
  ifEmpty?: boolean;
}

/**
 * Remove a path: a file or a link is unlinked (a link itself, never what it points to), a
 * directory removed (rmdir: ENOTEMPTY unless `recursive` or `ifEmpty`). Missing is fine
 * ("absent"). Components above it may not be links.
 */
export function removePath(ctx: ApplyContext, path: string, o: RemoveOptions = {}): 'removed' | 'absent' | 'kept' {
  assertApplyContext(ctx);
  let parent: Parent;
  try {
    parent = openParent(ctx, 'remove', path, false);
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return 'absent';
    throw e;
  }
  const { dir, name, host } = parent;
  try {
    return named(host, () => {
      let st: Stats;
      try {
        st = lstatSync(dir.at(name));
      } catch (e) {
        if (errno(e) === 'ENOENT') return 'absent';
        throw e;
      }
      if (!st.isDirectory()) {
        if (o.ifEmpty) return 'kept';
        unlinkSync(dir.at(name));
      } else if (o.recursive) removeTree(dir, name, st.dev);
      else
        try {
          rmdirSync(dir.at(name));
        } catch (e) {
          if (o.ifEmpty && (errno(e) === 'ENOTEMPTY' || errno(e) === 'EEXIST')) return 'kept';
          throw e;
        }
      return 'removed';
    });
  } finally {
    dir.close();
  }
}

/** rm -r of `name` below `parent`, every step from a held-open directory, never through a link or into a mount. */
function removeTree(parent: Dir, name: string, dev: number): void {
  let d: Dir;
  try {
    const { doc, host } = parent.child(name);
    d = new Dir(openSync(parent.at(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW), doc, host);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    if (errno(e) !== 'ENOTDIR' && errno(e) !== 'ELOOP') throw e;
    unlinkSync(parent.at(name)); // it became a link or a file: that goes, not what it points to
    return;
  }
  try {
    if (d.stat().dev !== dev)
      throw new OpdError(
        'refused',
        `${d.hostPath} is a mount point: opd does not remove what another filesystem holds`,
        {
          hint: 'unmount it first',
        },
      );
    for (const entry of readdirSync(d.at(''))) {
      let st: Stats;
      try {
        st = lstatSync(d.at(entry));
      } catch {
        continue;
      }
      if (st.isDirectory()) removeTree(d, entry, dev);
      else
        try {
          unlinkSync(d.at(entry));
        } catch (e) {
          if (errno(e) !== 'ENOENT') throw e;
        }
    }
  } finally {
    d.close();
  }
  rmdirSync(parent.at(name));
}

/**
 * mkdir -p: every missing component created (0755, the umask applies), none may be a link;
 * owner and mode of the last one set on its descriptor when given.
 */
export function makeDir(ctx: ApplyContext, path: string, meta: Meta = {}): void {
  assertApplyContext(ctx);
  checkPath(path);
  const root = rootOf(ctx.settings);
  const host = root + path;
  const base = named(host, () => openRoot(root));
  let d: Dir;
  try {
    d = named(host, () => walkDir(base, path, { what: 'create directory', target: path, create: 0o755 }));
  } finally {
    base.close();
  }
  try {
    named(host, () => setOnFd(d.fd, meta));
  } finally {
    d.close();
  }
}

/** A path changed between read and apply: refuse rather than act on what is there now. */
function changed(path: string, was: string, now: string): OpdError {
  return new OpdError('refused', `${path} is a ${now} now (it was a ${was} when opd read it); nothing was changed`, {
    hint: 'check who changed it, then run opd again',
  });
}

const kindOf = (st: Stats) =>
  st.isSymbolicLink() ? 'symbolic link' : st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'special file';

/** A directory another user owns or anyone may write: what is in it may be a hard link planted there. */
const untrusted = (st: Stats) => st.uid !== 0 || (st.mode & 0o002) !== 0;

/**
 * chmod/chown of an existing path: a file or directory is opened with O_NOFOLLOW and changed
 * through its descriptor (a link swapped in after the read is refused, never followed); a link
 * (`type` symlink) gets lchown. A file with several hard links in a directory another user
 * owns or may write is refused (it may be a link to a file that is not theirs).
 */
export function setMeta(ctx: ApplyContext, path: string, type: 'file' | 'directory' | 'symlink', meta: Meta): void {
  assertApplyContext(ctx);
  const { dir, name, host, root } = openParent(ctx, 'chmod/chown', path, false);
  try {
    named(host, () => {
      const at = dir.at(name);
      if (type === 'symlink') {
        const st = lstatSync(at);
        if (!st.isSymbolicLink()) throw changed(path, 'symbolic link', kindOf(st));
        if (meta.uid !== undefined || meta.gid !== undefined) lchownSync(at, meta.uid ?? -1, meta.gid ?? -1);
        return;
      }
      let fd: number;
      try {
        fd = openSync(at, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | (type === 'directory' ? O_DIRECTORY : 0));
      } catch (e) {
        const st = errno(e) === 'ELOOP' || errno(e) === 'ENOTDIR' ? lstatSync(at) : undefined;
        if (st?.isSymbolicLink()) throw linkRefusal('chmod/chown', path, path, readlinkSync(at), root);
        if (st) throw changed(path, type, kindOf(st));
        throw e;
      }
      try {
        const st = fstatSync(fd);
        if (type === 'file' ? !st.isFile() : !st.isDirectory()) throw changed(path, type, kindOf(st));
        if (type === 'file' && st.nlink > 1 && untrusted(dir.stat()))
          throw new OpdError(
            'refused',
            `${path} has ${st.nlink} hard links and its directory is another user's or world-writable: opd does not chmod or chown it`,
            {
              hint: 'it may be a link to a file that is not theirs: replace it by a file of its own (write its content)',
            },
          );
        setOnFd(fd, meta);
      } finally {
        closeSync(fd);
      }
    });
  } finally {
    dir.close();
  }
}

/** Create or replace a symbolic link (a temp link renamed over the path: never followed), owner by lchown. */
export function putSymlink(ctx: ApplyContext, path: string, target: string, meta: Meta = {}): void {
  assertApplyContext(ctx);
  const { dir, name, host } = openParent(ctx, 'write', path, true);
  const tmp = tmpName(name);
  try {
    named(host, () => symlinkSync(target, dir.at(tmp)));
    try {
      named(host, () => {
        if (meta.uid !== undefined || meta.gid !== undefined) lchownSync(dir.at(tmp), meta.uid ?? -1, meta.gid ?? -1);
        renameSync(dir.at(tmp), dir.at(name));
      });
    } catch (e) {
      try {
        unlinkSync(dir.at(tmp));
      } catch {
        /* gone */
      }
      throw e;
    }
    fsyncQuiet(dir.fd);
  } finally {
    dir.close();
  }
}

/** rename(2) from one path to another, both resolved from the root without links (the target's parents are created). */
export function renamePath(ctx: ApplyContext, from: string, to: string): void {
  assertApplyContext(ctx);
  const a = openParent(ctx, 'rename', from, false);
  try {
    const b = openParent(ctx, 'rename', to, true);
    try {
      named(`${a.host} → ${b.host}`, () => renameSync(a.dir.at(a.name), b.dir.at(b.name)));
      fsyncQuiet(b.dir.fd);
      fsyncQuiet(a.dir.fd);
    } finally {
      b.dir.close();
    }
  } finally {
    a.dir.close();
  }
}

/**
 * A write to a file of the kernel: `/proc/sys/…` (always the running kernel's, also under
 * --root: runtime state is not sandboxed) or `/sys/…` (under --root the root's tree, else the
 * kernel's). The file must exist (no O_CREAT) and is opened O_WRONLY|O_TRUNC|O_NOFOLLOW; on the real
 * kernel links are followed only where they live on sysfs/procfs (no user can make one there:
 * /sys/bus/pci/devices/<addr> are links) and the file opened must be on sysfs/procfs.
 * Errors keep their errno (ENOENT, EINVAL…): the plugin explains them.
 */
export function writeKernelFile(ctx: ApplyContext, path: string, value: string): void {
  assertApplyContext(ctx);
  checkPath(path);
  const proc = path.startsWith('/proc/sys/');
  if (!proc && !path.startsWith('/sys/'))
    throw new OpdError('bug', `writeKernelFile: ${path} is not under /proc/sys or /sys`);
  const root = proc ? '' : rootOf(ctx.settings);
  const host = root + path;
  const base = named(host, () => openRoot(root));
  let dir: Dir;
  try {
    dir = named(host, () =>
      walkDir(base, posix.dirname(path), { what: 'write', target: path, kernelLinks: root === '' }),
    );
  } finally {
    base.close();
  }
  try {
    named(host, () => {
      const fd = openSync(dir.at(posix.basename(path)), O_WRONLY | O_TRUNC | O_NOFOLLOW);
      try {
        const want = proc ? PROC_SUPER_MAGIC : SYSFS_MAGIC;
        if (!root && Number(statfsSync(`/proc/self/fd/${fd}`).type) !== want)
          throw new OpdError(
            'refused',
            `${path} is not on the kernel's ${proc ? 'procfs' : 'sysfs'}: opd did not write it`,
            {
              hint: `mount ${proc ? 'proc on /proc' : 'sysfs on /sys'}`,
            },
          );
        const buf = Buffer.from(value, 'utf8');
        let off = 0;
        while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      } finally {
        closeSync(fd);
      }
    });
  } finally {
    dir.close();
  }
}

/**
 * A private scratch file for a tool that reads its input from a file (virsh define, lxc-create
 * -f): a new directory of its own (mkdtemp, 0700) in the temp directory, the file created
 * O_EXCL (0600), removed with its directory when `fn` is done.
 */
export async function withTempFile<T>(
  ctx: ApplyContext,
  name: string,
  content: string,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  assertApplyContext(ctx);
  const dir = mkdtempSync(join(tmpdir(), 'opd-'));
  try {
    const f = join(dir, posix.basename(name));
    writeFileSync(f, content, { mode: 0o600, flag: 'wx' });
    return await fn(f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Paths a tool opens itself (useradd --prefix writes <root>/etc/passwd, lxc-create -P writes
 * under the lxcpath): every component, the last one too, must not be a link (missing ones are
 * fine: the tool creates them, and nothing is there to follow). Checked just before the tool
 * runs; what the tool then does between this check and its own open is the tool's (the
 * residual race README names: only the owner of a directory on the way can use it).
 */
export function checkToolPaths(ctx: ApplyContext, paths: string[], what: string): void {
  assertApplyContext(ctx);
  for (const p of paths) {
    let parent: Parent;
    try {
      parent = openParent(ctx, what, p, false);
    } catch (e) {
      if (errno(e) === 'ENOENT') continue;
      throw e;
    }
    try {
      let st: Stats;
      try {
        st = lstatSync(parent.dir.at(parent.name));
      } catch {
        continue;
      }
      if (st.isSymbolicLink()) throw linkRefusal(what, p, p, readlinkSync(parent.dir.at(parent.name)), parent.root);
    } finally {
      parent.dir.close();
    }
  }
}

/** The host path of a document path for a tool's argv: checked like checkToolPaths, then rooted. */
export function toolPath(ctx: ApplyContext, p: string, what: string): string {
  checkToolPaths(ctx, [p], what);
  return rootOf(ctx.settings) + p;
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
