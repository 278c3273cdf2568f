/**
 * A run: orchestration above the core and the audit trail. Under the lock (session.ts), plan,
 * record run.start (record.ts), apply and verify (apply-verify.ts), roll back on failure when
 * asked (rollback.ts), record run.end. `dryRun` stops after the plan and takes no lock.
 */
import type { AuditLog } from '../audit/chain.js';
import { newRunId } from '../audit/chain.js';
import { secretKey } from '../audit/key.js';
import type { ChangeOutcome } from '../core/apply.js';
import { computePlan, unreachableError, type Computed, type EngineOptions, type Prepared } from '../core/engine.js';
import { countOutcomes, type RunReport } from '../core/report.js';
import { applyAndVerify } from './apply-verify.js';
import { RunRecorder, recordStart } from './record.js';
import { rollbackRun } from './rollback.js';
import { openSession } from './session.js';
import { mark } from '../core/profile.js';
import { recover } from './recover.js';
import { TempJournal, journalPath } from './journal.js';

/** The signal a stop names (`SIGINT`, `SIGTERM`), or what else stopped the run. */
export function stopReason(stop: AbortSignal | undefined): string {
  const r: unknown = stop?.reason;
  return typeof r === 'string' ? r : 'stopped';
}

export interface RunOptions extends EngineOptions {
  dryRun?: boolean;
  rollback?: boolean;
  auditLog: string;
  auditKey?: string;
  lockWaitMs?: number;
  /** Who/what triggered the run; a function decides once the plan is known (the daemon: `drift`). */
  trigger?: string | ((c: Computed) => string);
  /** Aborts the changes in flight (a second signal): the process then ends; recovery reads them later. */
  signal?: AbortSignal;
  /**
   * Stop (a first SIGINT/SIGTERM; its reason names the signal): start no new change, let the
   * ones in flight finish, record them, write run.end with `interrupted` (status `interrupted`).
   */
  stop?: AbortSignal;
  onChange?: (o: ChangeOutcome) => void;
  onRollback?: (o: ChangeOutcome) => void;
  onLockWait?: (pid: number) => void;
  /** Extra entries written right after run.start (the daemon's drift entries). */
  beforeApply?: (audit: AuditLog, run: string, c: Computed) => void;
  /**
   * A plugin whose backend is down: without `partial` nothing is applied (exit 69); with it the
   * reachable part is applied and the report lists the rest as unreachable.
   */
  partial?: boolean;
  /** Checked under the lock once the plan is computed, before anything is applied (a saved plan: throws when stale). */
  expect?: (c: Computed) => void;
  /** Extra fields for run.start (a saved plan's hash and file). */
  startFields?: Record<string, unknown>;
  /** Called after run.end of a successful run, with the audit still open (confirm-or-revert). */
  afterRun?: (audit: AuditLog, run: string, c: Computed, touched: Set<string>) => void | Promise<void>;
}

export async function run(prep: Prepared, o: RunOptions): Promise<RunReport> {
  const t0 = Date.now();
  if (o.dryRun) {
    const c = await computePlan(prep, o);
    return {
      status: c.plan.changes.length ? 'planned' : 'noop',
      plan: c.plan,
      outcomes: [],
      verification: [],
      durationMs: Date.now() - t0,
      unreachable: c.unreachable,
      computed: c,
    };
  }
  let session: Awaited<ReturnType<typeof openSession>>;
  try {
    session = await openSession(o);
  } catch (err) {
    // stopped while waiting for another run's lock: nothing was begun
    if (!o.stop?.aborted) throw err;
    const plan = { changes: [], diffs: [] };
    return {
      status: 'interrupted',
      interrupted: stopReason(o.stop),
      plan,
      outcomes: [],
      verification: [],
      durationMs: Date.now() - t0,
      unreachable: [],
    };
  }
  mark('lock and audit trail');
  try {
    const { audit, recovered } = session;
    const redact = prep.redactor.withKey(secretKey(o.auditLog, o.auditKey));
    // what a dead writer left: read from the host and recorded before anything is planned
    recovered.push(...(await recover(prep, o, audit, session.interrupted, redact)).lines);
    const c = await computePlan(prep, o);
    const { plan, unreachable } = c;
    if (unreachable.length && !o.partial) throw unreachableError(unreachable);
    o.expect?.(c);
    const done = (status: RunReport['status']): RunReport => ({
      status,
      plan,
      outcomes: [],
      verification: [],
      durationMs: Date.now() - t0,
      audit: { seq: audit.lastSeq, recovered },
      computed: c,
      unreachable,
      ...(status === 'interrupted' ? { interrupted: stopReason(o.stop) } : {}),
    });
    if (plan.changes.some((ch) => ch.blocker)) return done('blocked');
    if (!plan.changes.length) return done('noop');
    // stopped while planning: nothing was begun, nothing to record
    if (o.stop?.aborted) return done('interrupted');
    audit.ensureSpace(plan.changes.length);
    const runId = newRunId();
    recordStart(audit, runId, prep, c, redact, o);
    mark('audit run.start');
    o.beforeApply?.(audit, runId, c);
    const rec = new RunRecorder(audit, runId, redact, c.diffs);
    const flush = () => rec.flush();
    const journal = new TempJournal(journalPath(o.auditLog), runId);
    const hooks = { noteTempDir: (d: string, root: string) => journal.note(d, root) };
    const { outcomes, touched, verification, after } = await applyAndVerify(
      prep,
      { ...o, ...hooks, onIntent: (chs) => rec.intent('change', chs) },
      c,
      (out) => {
        rec.record('change', out);
        o.onChange?.(out);
      },
      flush,
    );
    const interrupted = o.stop?.aborted ? stopReason(o.stop) : undefined;
    let failed = outcomes.some((x) => x.status !== 'ok') || verification.length > 0;
    let rollback: RunReport['rollback'];
    if (failed && !interrupted && o.rollback && touched.size && after) {
      rollback = await rollbackRun(
        prep,
        { ...o, ...hooks, onIntent: (chs) => rec.intent('rollback', chs) },
        c,
        after,
        touched,
        (out) => {
          rec.record('rollback', out);
          o.onRollback?.(out);
        },
        flush,
      );
      flush();
    }
    if (o.signal?.aborted) failed = true;
    const status: RunReport['status'] = interrupted ? 'interrupted' : failed ? 'failed' : 'ok';
    audit.append(runId, 'run.end', {
      status,
      summary: countOutcomes(outcomes),
      ...(interrupted
        ? { interrupted, not_started: outcomes.filter((x) => x.notStarted).length }
        : { verification: verification.map((v) => v.address) }),
      ...(rollback ? { rollback: countOutcomes(rollback.outcomes) } : {}),
      duration_ms: Date.now() - t0,
    });
    // every temp file of the run is renamed or removed by now
    journal.finish();
    if (status === 'ok') await o.afterRun?.(audit, runId, c, touched);
    mark('audit run.end');
    return {
      run: runId,
      status,
      plan,
      outcomes,
      verification,
      rollback,
      durationMs: Date.now() - t0,
      audit: { seq: audit.lastSeq, recovered },
      computed: c,
      unreachable,
      ...(interrupted ? { interrupted } : {}),
    };
  } finally {
    session.close();
  }
}
