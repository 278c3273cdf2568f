/**
 * A run's hold on the audit trail: the lock (one writer at a time), the trail opened, and
 * what a previous writer that died left behind recorded (a torn last line, a dead lock holder,
 * a run without run.end).
 */
import { AuditLog, newRunId, readKey } from '../audit/chain.js';
import { acquireLock } from '../audit/lock.js';
import { TUNABLES } from '../core/tunables.js';

export interface SessionOptions {
  auditLog: string;
  auditKey?: string;
  lockWaitMs?: number;
  onLockWait?: (pid: number) => void;
}

export interface Session {
  audit: AuditLog;
  /** what was recovered, one line each for the operator */
  recovered: string[];
  close(): void;
}

export async function openSession(o: SessionOptions): Promise<Session> {
  const lock = await acquireLock(o.auditLog + '.lock', o.lockWaitMs ?? TUNABLES.runLockWaitMs, (h) =>
    o.onLockWait?.(h.pid),
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
    if (audit.interruptedRun) {
      audit.append(audit.interruptedRun, 'run.interrupted', { reason: 'the writer died before run.end' });
      recovered.push(`run ${audit.interruptedRun} was interrupted; the next plan re-reads the host`);
    }
    return { audit, recovered, close };
  } catch (err) {
    close();
    throw err;
  }
}
