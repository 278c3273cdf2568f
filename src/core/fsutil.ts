/** Small filesystem helpers shared by the core, the audit trail and (through hostfs.ts) the plugins. */
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { OpdError } from './errors.js';

/**
 * mkdir -p, one level at a time. (Node's recursive mkdirSync spins forever under /proc,
 * which a user can reach with a mistyped --audit-log.)
 */
export function ensureDir(path: string, mode = 0o750): void {
  const abs = resolve(path);
  const chain: string[] = [];
  for (let p = abs; p !== dirname(p); p = dirname(p)) chain.unshift(p);
  for (const p of chain) {
    try {
      mkdirSync(p, { mode });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'EISDIR') throw err;
    }
  }
}

/** The temp files of opd's atomic writes: `.<name>.opd-<12 hex digits>` beside their target. */
export const TEMP_NAME = /^\..+\.opd-[0-9a-f]{12}$/;

export interface AtomicWriteOptions {
  /** the file's mode (default 0600) */
  mode?: number;
  /** mode of directories created on the way (default 0750) */
  dirMode?: number;
  /** never replace an existing file: throws EEXIST when `target` exists (a hard link, not a rename) */
  exclusive?: boolean;
}

/**
 * Write a whole file atomically: a temp file in the same directory, written, chmod'ed and
 * fsync'ed, then renamed over the target (or linked, with `exclusive`), then the directory
 * fsync'ed. A reader sees the old content or the new one, never a part; a crash loses neither.
 * The one atomic write of opd: audit, run state, saved plans, keys, and (through
 * core/hostfs.ts, behind the ApplyContext) the plugins.
 */
export function writeFileAtomic(target: string, data: string | Uint8Array, o: AtomicWriteOptions = {}): void {
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target).slice(0, 200)}.opd-${randomBytes(6).toString('hex')}`);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    ensureDir(dir, o.dirMode ?? 0o750); // only when the directory is missing: no mkdir walk per write
    fd = openSync(tmp, 'wx', 0o600);
  }
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fchmodSync(fd, o.mode ?? 0o600);
    fsyncSync(fd);
    closeSync(fd);
    if (o.exclusive) {
      linkSync(tmp, target);
      unlinkSync(tmp);
    } else renameSync(tmp, target);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
    throw err;
  }
  fsyncDir(dir);
}

/** fsync a directory (after a rename or link in it); some filesystems cannot, which is fine. */
export function fsyncDir(dir: string): void {
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some filesystems cannot fsync a directory */
  }
}

/**
 * A file the user named (--config, --vars): its text, or a usage error that says which option
 * and why ("no such file", EACCES…) with a hint, never a stack trace.
 */
export function readNamedFile(file: string, label: string, hint: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OpdError('usage', `${label}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`, {
      hint,
    });
  }
}
