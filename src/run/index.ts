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

export interface RunOptions extends EngineOptions {
  dryRun?: boolean;
  rollback?: boolean;
  auditLog: string;
  auditKey?: string;
  lockWaitMs?: number;
  /** Who/what triggered the run; a function decides once the plan is known (the daemon: `drift`). */
  trigger?: string | ((c: Computed) => string);
  signal?: AbortSignal;
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
  const session = await openSession(o);
  mark('lock and audit trail');
  try {
    const { audit, recovered } = session;
    // plugins whose backend this very plan brings up wait for a second stage (below), and so do
    // the resources that depend on theirs; the other unreachable plugins are unknown
    const c = await computePlan(prep, { ...o, staged: 'first' });
    const { plan, waiting } = c;
    let unreachable = c.unreachable.filter((u) => !waiting.includes(u));
    if (unreachable.length && !o.partial) throw unreachableError(c.unreachable);
    o.expect?.(c);
    const done = (status: RunReport['status']): RunReport => ({
      status,
      plan,
      outcomes: [],
      verification: [],
      durationMs: Date.now() - t0,
      audit: { seq: audit.lastSeq, recovered },
      computed: c,
      unreachable: c.unreachable,
    });
    if (plan.changes.some((ch) => ch.blocker)) return done('blocked');
    if (!plan.changes.length) return done('noop');
    audit.ensureSpace(plan.changes.length);
    const redact = prep.redactor.withKey(secretKey(o.auditLog, o.auditKey));
    const runId = newRunId();
    recordStart(audit, runId, prep, c, redact, o);
    mark('audit run.start');
    o.beforeApply?.(audit, runId, c);
    const rec = new RunRecorder(audit, runId, redact, c.diffs);
    const flush = () => rec.flush();
    const onOutcome = (r: RunRecorder) => (out: ChangeOutcome) => {
      r.record('change', out);
      o.onChange?.(out);
    };
    const stage1 = await applyAndVerify(prep, o, c, onOutcome(rec), flush);
    let { outcomes, verification, after } = stage1;
    const { touched } = stage1;
    let failed = outcomes.some((x) => x.status !== 'ok') || verification.length > 0;
    if (waiting.length) {
      // stage 2: what the first stage brought up (a database server) is read, planned and applied
      const names = new Set([...waiting.map((u) => u.plugin), ...c.held.map((a) => a.split('/')[0])]);
      const later: Prepared = { ...prep, plugins: new Map([...prep.plugins].filter(([n]) => names.has(n))) };
      const c2 = failed || o.signal?.aborted ? undefined : await computePlan(later, { ...o, staged: 'second' });
      if (!c2) unreachable = [...unreachable, ...waiting];
      else {
        unreachable = [...unreachable, ...c2.unreachable];
        if (c2.plan.changes.some((ch) => ch.blocker)) failed = true;
        else if (c2.plan.changes.length) {
          audit.ensureSpace(c2.plan.changes.length);
          const rec2 = new RunRecorder(audit, runId, redact, c2.diffs);
          const s2 = await applyAndVerify(later, o, c2, onOutcome(rec2), () => rec2.flush());
          outcomes = [...outcomes, ...s2.outcomes];
          verification = [...verification, ...s2.verification];
          for (const r of s2.touched) touched.add(r);
          after = after && s2.after ? { ...after, ...s2.after } : undefined;
          c.diffs.push(...c2.diffs);
          Object.assign(c.current, c2.current);
          // one plan for the report: the second stage's ids follow the first's
          const off = plan.changes.length;
          for (const ch of c2.plan.changes) Object.assign(ch, { id: ch.id + off, deps: ch.deps.map((d) => d + off) });
          plan.changes.push(...c2.plan.changes);
          failed ||= s2.outcomes.some((x) => x.status !== 'ok') || s2.verification.length > 0;
        }
      }
      if (!c2 || c2.unreachable.length) failed = true;
    }
    let rollback: RunReport['rollback'];
    if (failed && o.rollback && touched.size && after) {
      rollback = await rollbackRun(
        prep,
        o,
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
    const status = failed ? 'failed' : 'ok';
    audit.append(runId, 'run.end', {
      status,
      summary: countOutcomes(outcomes),
      verification: verification.map((v) => v.address),
      ...(rollback ? { rollback: countOutcomes(rollback.outcomes) } : {}),
      duration_ms: Date.now() - t0,
    });
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
    };
  } finally {
    session.close();
  }
}
