/**
 * Host file helpers for plugins that write under the sandbox root (`--root` / OPD_ROOT) and
 * are not the files plugin (which keeps its own in src/plugins/files/fsutil.ts): the root,
 * atomic writes, small reads. node:fs only, no processes.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ApplyContext, Settings } from './plugin.js';
import { assertApplyContext } from './plugin.js';
import { OpdError } from './errors.js';
import { ensureDir } from './fsutil.js';

/** The sandbox root ('' = the real /). */
export function rootOf(settings: Settings): string {
  const r = typeof settings.root === 'string' ? settings.root : '';
  if (!r || r === '/') return '';
  if (!r.startsWith('/'))
    throw new OpdError('usage', `--root must be an absolute path, got ${JSON.stringify(r)}`, { hint: 'pass --root /some/dir (or OPD_ROOT=/some/dir)' });
  return r.replace(/\/+$/, '');
}

/** A small text file, undefined when missing. */
export function readText(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Temp file in the same directory, fsync, rename over the target, fsync of the directory. */
export function atomicWrite(ctx: ApplyContext, target: string, data: string, mode = 0o644): void {
  assertApplyContext(ctx);
  const dir = dirname(target);
  ensureDir(dir, 0o755);
  const tmp = join(dir, `.${basename(target).slice(0, 200)}.opd-${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    const buf = Buffer.from(data, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fchmodSync(fd, mode);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, target);
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
  try {
    const dfd = openSync(dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* some filesystems cannot fsync a directory */
  }
}
