/**
 * A run: orchestration above the core and the audit trail. Under the lock (session.ts), plan,
 * record run.start (record.ts), apply and verify (apply-verify.ts), roll back on failure when
 * asked (rollback.ts), record run.end. `dryRun` stops after the plan and takes no lock.
 */
import type { AuditLog } from '../audit/chain.js';
import { newRunId } from '../audit/chain.js';
import { secretKey } from '../audit/key.js';
import type { ChangeOutcome } from '../core/apply.js';
import {
  computePlan,
  unreachableError,
  type Computed,
  type EngineOptions,
  type Prepared,
  type UnreachablePlugin,
} from '../core/engine.js';
import { OpdError } from '../core/errors.js';
import type { PlannedChange } from '../core/plan.js';
import { TUNABLES } from '../core/tunables.js';
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
  /**
   * A change's outcome, once its audit entry is on disk (fsynced): entries are written in groups
   * at most TUNABLES.progressFlushMs apart, so a long wave reports as it goes.
   */
  onChange?: (o: ChangeOutcome) => void;
  /** The changes of each batch handed to a plugin, as it starts (what is running now). */
  onStart?: (changes: PlannedChange[]) => void;
  onRollback?: (o: ChangeOutcome) => void;
  onLockWait?: (pid: number) => void;
  /** Extra entries written right after run.start (the daemon's drift entries). */
  beforeApply?: (audit: AuditLog, run: string, c: Computed) => void | Promise<void>;
  /**
   * A plugin whose backend is down: without `partial` nothing is applied (exit 69); with it the
   * reachable part is applied and the report lists the rest as unreachable.
   */
  partial?: boolean;
  /** The plan, once computed (before anything is applied): what progress shows needs it. */
  onPlan?: (c: Computed) => void;
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
    // plugins whose backend this very plan brings up wait for a second stage (below), and so do
    // the resources that depend on theirs; the other unreachable plugins are unknown
    const c = await computePlan(prep, { ...o, staged: 'first' });
    const { plan, waiting } = c;
    let unreachable = c.unreachable.filter((u) => !waiting.includes(u));
    if (unreachable.length && !o.partial) throw unreachableError(c.unreachable);
    o.expect?.(c);
    o.onPlan?.(c);
    const done = (status: RunReport['status']): RunReport => ({
      status,
      plan,
      outcomes: [],
      verification: [],
      durationMs: Date.now() - t0,
      audit: { seq: audit.lastSeq, recovered },
      computed: c,
      unreachable: c.unreachable,
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
    await o.beforeApply?.(audit, runId, c);
    const rec = new RunRecorder(audit, runId, redact, c.diffs);
    const journal = new TempJournal(journalPath(o.auditLog), runId);
    const hooks = { noteTempDir: (d: string, root: string) => journal.note(d, root) };
    // each stage's waves are announced (intent, fsync'd) by its own recorder before they start
    const stageOpts = (r: RunRecorder) => ({
      ...o,
      ...hooks,
      onIntent: (chs: PlannedChange[]) => r.intent('change', chs),
    });
    // group commit: outcomes are reported once their entries are fsynced, a wave's at its end or
    // every TUNABLES.progressFlushMs while it goes on (a 2,000-file wave reports as it goes)
    const commit = (r: RunRecorder) => {
      const told: ChangeOutcome[] = [];
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        r.flush();
        for (const x of told.splice(0)) o.onChange?.(x);
      };
      const onOutcome = (out: ChangeOutcome) => {
        r.record('change', out);
        told.push(out);
        timer ??= setTimeout(flush, TUNABLES.progressFlushMs);
      };
      const cancel = () => timer && clearTimeout(timer);
      return { flush, onOutcome, cancel };
    };
    const g1 = commit(rec);
    const stage1 = await applyAndVerify(prep, stageOpts(rec), c, g1.onOutcome, g1.flush).finally(g1.cancel);
    g1.flush();
    let { outcomes, verification, after } = stage1;
    const { touched } = stage1;
    let failed = outcomes.some((x) => x.status !== 'ok') || verification.length > 0;
    // a stop (first signal) during stage 1 left changes unstarted: stage 2 is neither read nor
    // planned, its plugins are reported as not started. A stop after stage 1's last change
    // began: stage 2 is read and planned (no change), and each of its changes is reported and
    // recorded as not started, as stage 1's are. A second signal (abort) reads nothing more.
    let stageTwoNotStarted: UnreachablePlugin[] | undefined;
    let rec2: RunRecorder | undefined;
    if (waiting.length) {
      // stage 2: what the first stage brought up (a database server) is read, planned and applied
      const names = new Set([...waiting.map((u) => u.plugin), ...c.held.map((a) => a.split('/')[0])]);
      const later: Prepared = { ...prep, plugins: new Map([...prep.plugins].filter(([n]) => names.has(n))) };
      const c2 = failed || o.signal?.aborted ? undefined : await computePlan(later, { ...o, staged: 'second' });
      if (!c2 && o.stop?.aborted) {
        const why = new OpdError(
          'dependency-failed',
          `not started: the run was stopped (${stopReason(o.stop)}) before its second stage`,
        );
        // the waiting plugins' resources and those held back with them (grouped by plugin)
        const byPlugin = new Map(waiting.map((u) => [u.plugin, [...u.resources]]));
        for (const a of c.held) {
          const p = a.split('/')[0];
          byPlugin.set(p, [...(byPlugin.get(p) ?? []), a]);
        }
        stageTwoNotStarted = [...byPlugin].map(([plugin, resources]) => ({ plugin, error: why, resources }));
      } else if (!c2) unreachable = [...unreachable, ...waiting];
      else {
        unreachable = [...unreachable, ...c2.unreachable];
        if (c2.plan.changes.some((ch) => ch.blocker)) failed = true;
        else if (c2.plan.changes.length) {
          audit.ensureSpace(c2.plan.changes.length);
          const r2 = (rec2 = new RunRecorder(audit, runId, redact, c2.diffs));
          const g2 = commit(r2);
          const s2 = await applyAndVerify(later, stageOpts(r2), c2, g2.onOutcome, g2.flush).finally(g2.cancel);
          g2.flush();
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
    const interrupted = o.stop?.aborted ? stopReason(o.stop) : undefined;
    // the rollback's entries name resources of both stages
    const recAll = rec2 ? new RunRecorder(audit, runId, redact, c.diffs) : rec;
    let rollback: RunReport['rollback'];
    if (failed && !interrupted && o.rollback && touched.size && after) {
      rollback = await rollbackRun(
        prep,
        { ...o, ...hooks, onIntent: (chs) => recAll.intent('rollback', chs) },
        c,
        after,
        touched,
        (out) => {
          recAll.record('rollback', out);
          o.onRollback?.(out);
        },
        () => recAll.flush(),
      );
      recAll.flush();
    }
    if (o.signal?.aborted) failed = true;
    const status: RunReport['status'] = interrupted ? 'interrupted' : failed ? 'failed' : 'ok';
    audit.append(runId, 'run.end', {
      status,
      summary: countOutcomes(outcomes),
      ...(interrupted
        ? {
            interrupted,
            not_started: outcomes.filter((x) => x.notStarted).length,
            ...(stageTwoNotStarted ? { second_stage_not_started: stageTwoNotStarted.map((u) => u.plugin) } : {}),
          }
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
      ...(stageTwoNotStarted ? { stageTwoNotStarted } : {}),
    };
  } finally {
    session.close();
  }
}
