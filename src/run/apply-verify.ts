/**
 * Apply a plan and verify it: read again what was changed; the diff of every resource whose
 * changes all succeeded must now be empty.
 */
import { applyPlan, type ApplyOptions, type ChangeOutcome } from '../core/apply.js';
import { diffAll, readAll, type Computed, type EngineOptions, type Prepared } from '../core/engine.js';
import { toOpdError } from '../core/errors.js';
import type { Obj } from '../core/plugin.js';
import type { VerificationFailure } from '../core/report.js';
import { mark } from '../core/profile.js';

export interface Applied {
  outcomes: ChangeOutcome[];
  /** resources with at least one change applied */
  touched: Set<string>;
  verification: VerificationFailure[];
  /** the host as read again for verification (undefined when that read failed) */
  after: Record<string, Obj> | undefined;
}

function verifyDiffs(prep: Prepared, current: Record<string, Obj>, addresses: Set<string>): VerificationFailure[] {
  // shown to users: secret values in the ops are masked
  const shown = prep.redactor;
  return diffAll(prep, current, true)
    .filter((d) => d.action !== 'noop' && addresses.has(d.address))
    .map((d) => ({ address: d.address, ops: shown.ops(d.plugin, d.collection, d.ops) }));
}

/** What the run layer hands the core's apply besides the outcomes: stop, abort, the write-ahead hooks. */
export type ApplyHooks = Pick<ApplyOptions, 'signal' | 'stop' | 'onIntent' | 'noteTempDir' | 'onStart'>;

export async function applyAndVerify(
  prep: Prepared,
  o: EngineOptions & ApplyHooks,
  c: Computed,
  onOutcome: (x: ChangeOutcome) => void,
  onWave: () => void,
): Promise<Applied> {
  const outcomes = await applyPlan(c.plan, prep.plugins, {
    settings: o.settings,
    log: o.log,
    allowDestroy: o.allowDestroy ?? false,
    signal: o.signal,
    stop: o.stop,
    onIntent: o.onIntent,
    noteTempDir: o.noteTempDir,
    onStart: o.onStart,
    onOutcome,
    onWave,
  });
  onWave();
  mark('apply (backends) and audit of the changes');
  const touched = new Set(outcomes.filter((x) => x.status === 'ok').map((x) => x.change.resource));
  // stopped by a signal: what was applied is on the record; verifying it is left to the next run
  if (o.stop?.aborted) return { outcomes, touched, verification: [], after: undefined };
  // resources all of whose changes succeeded (one pass: 10,000 resources must not scan 10,000 outcomes each)
  const notOk = new Set(outcomes.filter((x) => x.status !== 'ok').map((x) => x.change.resource));
  const okResources = new Set([...touched].filter((r) => !notOk.has(r)));
  // verify: read again. A backend that went away during the run fails the verification of what
  // it holds (exit 1, run.end written), it does not abort the run unrecorded.
  let after: Record<string, Obj> | undefined;
  let verification: VerificationFailure[];
  try {
    after = await readAll(prep, o, new Set(outcomes.map((x) => x.change.plugin)));
    for (const [k, v] of Object.entries(c.current)) if (!(k in after)) after[k] = v;
    verification = verifyDiffs(prep, after, okResources);
    mark('verify (read again, diff)');
  } catch (err) {
    const e = toOpdError(err);
    verification = [...okResources].sort().map((address) => ({ address, ops: [], error: e.message }));
    if (!verification.length) verification = [{ address: '(verify)', ops: [], error: e.message }];
  }
  return { outcomes, touched, verification, after };
}
