/**
 * One writer at a time. A lock file created with O_EXCL holds the owner's pid and process
 * start time; a lock whose owner is gone (kill -9) is recovered. A second apply waits for the
 * lock (up to --lock-wait) and then fails with exit 75 naming the holder.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { openSync, writeSync, closeSync, readFileSync, unlinkSync, fsyncSync, linkSync } from 'node:fs';
import { ensureDir } from '../core/fsutil.js';
import { dirname } from 'node:path';
import { OpdError } from '../core/errors.js';

export interface LockInfo {
  pid: number;
  start: string;
  cmd?: string;
}

function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(info: LockInfo): boolean {
  const s = procStart(info.pid);
  return s !== undefined && s === info.start;
}

function readLock(path: string): LockInfo | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { pid: -1, start: 'unreadable' }; // torn lock file: its writer died while writing it
  }
}

/**
 * Create the lock file with its content in one step: the content goes to a file of our own,
 * which is then hard-linked to the lock path (link fails if the lock exists). A reader never
 * sees a lock file without its holder, so a half-written lock cannot be taken for a dead one's.
 */
function tryCreate(path: string): boolean {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    const info: LockInfo = {
      pid: process.pid,
      start: procStart(process.pid) ?? '?',
      cmd: process.argv.slice(2).join(' ').slice(0, 200),
    };
    writeSync(fd, JSON.stringify(info));
    fsyncSync(fd);
    closeSync(fd);
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
  }
}

/** Remove a lock whose owner is dead; a second-level lock keeps two breakers apart. */
function breakStale(path: string): boolean {
  const brk = path + '.break';
  if (!tryCreate(brk)) {
    const b = readLock(brk);
    if (b && !alive(b)) {
      try {
        unlinkSync(brk);
      } catch {
        /* someone else did */
      }
    }
    return false;
  }
  try {
    const cur = readLock(path);
    if (cur && !alive(cur)) {
      unlinkSync(path);
      return true;
    }
    return false;
  } finally {
    try {
      unlinkSync(brk);
    } catch {
      /* gone */
    }
  }
}

export interface Lock {
  release(): void;
  /** pid of a dead previous holder whose lock was recovered */
  recoveredFrom?: number;
}

export async function acquireLock(
  path: string,
  waitMs: number,
  onWait?: (holder: LockInfo) => void,
  signal?: AbortSignal,
): Promise<Lock> {
  try {
    ensureDir(dirname(path));
  } catch (err) {
    throw new OpdError('permission', `cannot create ${dirname(path)}: ${(err as Error).message}`, {
      hint: 'run as root, or give --audit-log PATH in a directory you may write',
    });
  }
  const deadline = Date.now() + waitMs;
  let told = false;
  let recoveredFrom: number | undefined;
  for (;;) {
    if (tryCreate(path)) {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.removeListener('exit', release); // a long-lived daemon takes the lock once per run
        try {
          const cur = readLock(path);
          if (cur?.pid === process.pid) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
      process.once('exit', release);
      return { release, recoveredFrom };
    }
    const holder = readLock(path);
    if (holder && !alive(holder)) {
      if (breakStale(path)) recoveredFrom = holder.pid;
      continue;
    }
    if (signal?.aborted)
      throw new OpdError('lock-busy', `stopped while waiting for ${path} (pid ${holder?.pid ?? '?'} holds it)`, {
        hint: 'nothing was applied',
      });
    if (Date.now() >= deadline) {
      throw new OpdError(
        'lock-busy',
        `another opd run holds ${path} (pid ${holder?.pid ?? '?'}: ${holder?.cmd ?? ''})`,
        {
          hint: 'wait for it to finish, or give --lock-wait SECONDS to wait longer',
        },
      );
    }
    if (!told && holder) {
      onWait?.(holder);
      told = true;
    }
    await sleep(50 + Math.random() * 50, undefined, signal ? { signal } : undefined).catch(() => undefined);
  }
}
