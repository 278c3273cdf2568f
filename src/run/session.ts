/**
 * A run's hold on the audit trail: the lock (one writer at a time), the trail opened, and
 * what a previous writer that died left behind recorded (a torn last line, a dead lock holder,
 * its temp files beside the trail); a run it left without run.end is named for recovery
 * (recover.ts), which needs the plugins.
 */
import { AuditLog, newRunId, readKey } from '../audit/chain.js';
import { acquireLock } from '../audit/lock.js';
import { TUNABLES } from '../core/tunables.js';
import { TEMP_NAME } from '../core/fsutil.js';
import { readdirSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface SessionOptions {
  auditLog: string;
  auditKey?: string;
  lockWaitMs?: number;
  onLockWait?: (pid: number) => void;
  /** A stop (signal) while waiting for the lock ends the wait: nothing was begun. */
  stop?: AbortSignal;
}

export interface Session {
  audit: AuditLog;
  /** what was recovered, one line each for the operator */
  recovered: string[];
  /** the id of a run a dead writer left without run.end (recover.ts closes it) */
  interrupted?: string;
  close(): void;
}

export async function openSession(o: SessionOptions): Promise<Session> {
  const lock = await acquireLock(
    o.auditLog + '.lock',
    o.lockWaitMs ?? TUNABLES.runLockWaitMs,
    (h) => o.onLockWait?.(h.pid),
    o.stop,
  );
  let audit: AuditLog;
  try {
    audit = AuditLog.open(o.auditLog, readKey(o.auditKey));
  } catch (err) {
    lock.release();
    throw err;
  }
  const close = () => {
    audit.close();
    lock.release();
  };
  try {
    const recovered: string[] = [];
    const left = removeOwnLeftovers(o.auditLog);
    if (left.length) {
      audit.append(newRunId(), 'recovered', { leftovers: left, found: 'temp file', removed: true });
      recovered.push(
        `removed ${left.length} temp file${left.length === 1 ? '' : 's'} a dead opd left beside the trail`,
      );
    }
    if (audit.recovery.tornBytes) {
      audit.append(newRunId(), 'recovery', {
        torn_bytes: audit.recovery.tornBytes,
        kept_as: audit.recovery.tornSavedAs,
      });
      recovered.push(
        `a torn last line (${audit.recovery.tornBytes} bytes) was kept aside in ${audit.recovery.tornSavedAs}`,
      );
    }
    if (lock.recoveredFrom) recovered.push(`recovered the lock of a dead opd (pid ${lock.recoveredFrom})`);
    // the run a dead writer left open: recovery (recover.ts) reads what it did and closes it
    return { audit, recovered, close, interrupted: audit.interruptedRun };
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * The audit trail's own leftovers (we hold the lock: no other writer is at work): temp files of
 * the head's atomic write and lock files of dead processes, beside the trail.
 */
function removeOwnLeftovers(auditLog: string): string[] {
  const dir = dirname(auditLog);
  const base = basename(auditLog);
  const lockTmp = new RegExp(
    `^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.lock(?:\\.break)?\\.(\\d+)\\.\\d+\\.tmp$`,
  );
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names.sort()) {
    const m = lockTmp.exec(n);
    const mine = (TEMP_NAME.test(n) && n.startsWith(`.${base}`)) || (m && !pidAlive(Number(m[1])));
    if (!mine) continue;
    try {
      unlinkSync(join(dir, n));
      out.push(join(dir, n));
    } catch {
      /* gone */
    }
  }
  return out;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
