/**
 * An event source for plugins whose state is files (files, users, groups): inotify through
 * fs.watch on the directory that holds each watched path, so that a replaced file (editors and
 * opd itself write a temp file and rename it), a removed one, a changed mode or owner and a new
 * content are all seen. One watch per directory, whatever the number of paths in it. A path whose
 * directory does not exist yet is watched from its nearest existing ancestor; when that ancestor
 * gains the missing directory the watches are laid again. inotify says what changed, never who:
 * the caller records such drift with an unknown actor.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Disposable } from './plugin.js';

/** For each watched directory, the names in it that lead to a watched path (and which path). */
function layout(paths: readonly string[]): Map<string, Map<string, string[]>> {
  const dirs = new Map<string, Map<string, string[]>>();
  for (const p of paths) {
    let child = p;
    let dir = dirname(p);
    // the nearest existing ancestor, and the name under it that leads to p
    while (dir !== child && !existsSync(dir)) {
      child = dir;
      dir = dirname(dir);
    }
    if (dir === child) continue; // no existing ancestor (cannot happen for absolute paths)
    const names = dirs.get(dir) ?? new Map<string, string[]>();
    const name = basename(child);
    names.set(name, [...(names.get(name) ?? []), p]);
    dirs.set(dir, names);
  }
  return dirs;
}

/**
 * Watch `paths` (absolute host paths). `onChange(path)` is called for each watched path that may
 * have changed. Watches are laid again when a missing directory appears or a watched one goes.
 */
export function watchPaths(paths: readonly string[], onChange: (path: string) => void, log: Logger): Disposable {
  let watchers: FSWatcher[] = [];
  let closed = false;
  const lay = () => {
    for (const w of watchers) w.close();
    watchers = [];
    if (closed) return;
    const dirs = layout(paths);
    for (const [dir, names] of dirs) {
      try {
        const w = watch(dir, { persistent: true }, (_event, name) => {
          const n = name?.toString();
          // no name, or the directory itself went (renamed, removed): look again at everything
          if (!n || !existsSync(dir)) {
            for (const list of names.values()) for (const p of list) onChange(p);
            setImmediate(lay);
            return;
          }
          const hit = names.get(n);
          if (!hit) return;
          for (const p of hit) onChange(p);
          // a missing directory on the way to a path appeared (or went), or a watched directory
          // was replaced: lay the watches again from there
          const entry = `${dir === '/' ? '' : dir}/${n}`;
          if (dirs.has(entry) || hit.some((p) => p !== entry)) setImmediate(lay);
        });
        w.on('error', (err) => {
          log.debug({ dir, err: err.message }, 'watch of a directory ended; laying the watches again');
          setImmediate(lay);
        });
        watchers.push(w);
      } catch (err) {
        log.debug({ dir, err: (err as Error).message }, 'cannot watch a directory');
      }
    }
  };
  lay();
  return {
    dispose: () => {
      closed = true;
      for (const w of watchers) w.close();
      watchers = [];
      return Promise.resolve();
    },
  };
}
