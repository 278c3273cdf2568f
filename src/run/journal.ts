/**
 * The directories a run creates temp files in, on disk beside the audit trail
 * (`<audit log>.tmpdirs`, one JSON line per directory, fsync'ed before the first temp file of
 * that directory is created). A run that ends removes it; when a killed run left it, the next
 * writer (recovery, under the lock) removes opd's leftovers in those directories and records them.
 */
import { closeSync, fdatasyncSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDir } from '../core/fsutil.js';

export function journalPath(auditLog: string): string {
  return auditLog + '.tmpdirs';
}

export class TempJournal {
  private fd: number | undefined;
  private readonly seen = new Set<string>();

  constructor(
    private readonly path: string,
    private readonly run: string,
  ) {}

  /**
   * Note the host directory `dir` (under `root`, the run's --root; '' for /) once per run:
   * written and fsync'ed before the caller creates a temp file there.
   */
  note(dir: string, root: string): void {
    if (this.seen.has(dir)) return;
    if (this.fd === undefined) {
      this.fd = openSync(this.path, 'a', 0o600);
      fsyncDir(dirname(this.path));
    }
    writeSync(this.fd, JSON.stringify({ run: this.run, dir, root }) + '\n');
    fdatasyncSync(this.fd);
    this.seen.add(dir);
  }

  /** The run ended: its temp files are renamed or removed, the record of them goes. */
  finish(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    try {
      unlinkSync(this.path);
    } catch {
      /* gone */
    }
  }
}

/** A directory a run created temp files in: its host path and the --root it lies under ('' for /). */
export interface NotedDir {
  dir: string;
  root: string;
}

/** The directories a journal left by a dead writer names (sorted, unique), and which runs wrote them. */
export function readJournal(path: string): { dirs: NotedDir[]; runs: string[] } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const dirs = new Map<string, NotedDir>();
  const runs = new Set<string>();
  for (const l of text.split('\n')) {
    try {
      const e = JSON.parse(l) as { run?: unknown; dir?: unknown; root?: unknown };
      const root = typeof e.root === 'string' ? e.root : '';
      if (typeof e.dir === 'string' && e.dir.startsWith('/') && e.dir.startsWith(root))
        dirs.set(e.dir, { dir: e.dir, root });
      if (typeof e.run === 'string') runs.add(e.run);
    } catch {
      /* a torn last line: its directory's temp file was not created yet */
    }
  }
  return { dirs: [...dirs.values()].sort((a, b) => (a.dir < b.dir ? -1 : 1)), runs: [...runs].sort() };
}

export function removeJournal(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone */
  }
}
