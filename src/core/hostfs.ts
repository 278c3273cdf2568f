/**
 * Host file helpers for plugins that write under the sandbox root (`--root` / OPD_ROOT) and
 * are not the files plugin (which keeps its own in src/plugins/files/fsutil.ts): the root,
 * atomic writes, small reads. node:fs only, no processes.
 */
import { readFileSync } from 'node:fs';
import type { ApplyContext, Settings } from './plugin.js';
import { assertApplyContext } from './plugin.js';
import { OpdError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';

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

/** Temp file in the same directory, fsync, rename over the target, fsync of the directory (core/fsutil.ts). */
export function atomicWrite(ctx: ApplyContext, target: string, data: string, mode = 0o644): void {
  assertApplyContext(ctx);
  writeFileAtomic(target, data, { mode, dirMode: 0o755 });
}
