/**
 * Rollback: put the resources a run touched back to their pre-state (read at the start of the
 * run), newest first. Also what confirm-or-revert uses at its deadline.
 */
import { applyPlan, type ChangeOutcome } from '../core/apply.js';
import { canonical } from '../core/canonical.js';
import { compare, isObj, project } from '../core/diff.js';
import { readAll, type Computed, type EngineOptions, type Prepared } from '../core/engine.js';
import { buildPlan, collectEdges } from '../core/plan.js';
import type { Obj, ResourceDiff } from '../core/plugin.js';
import type { VerificationFailure } from '../core/report.js';
import type { ApplyHooks } from './apply-verify.js';

export interface Reverted {
  outcomes: ChangeOutcome[];
  verification: VerificationFailure[];
}

/** Revert what a failed run changed, from what the host holds now (`now`). */
export function rollbackRun(
  prep: Prepared,
  o: EngineOptions & ApplyHooks,
  c: Computed,
  now: Record<string, Obj>,
  touched: Set<string>,
  onOutcome: (x: ChangeOutcome) => void,
  onWave: () => void,
): Promise<Reverted> {
  return revertResources(
    prep,
    o,
    c.diffs.filter((d) => touched.has(d.address)),
    now,
    false,
    onOutcome,
    onWave,
  );
}

/** What a resource was before a run (a pre-state), enough to put it back. */
export interface PreState {
  plugin: string;
  collection: string;
  name: string;
  address: string;
  /** projected to what the document names; undefined when it did not exist */
  current: Obj | undefined;
}

/**
 * Put resources back to their pre-state. `now` is what the host holds (read it when not given).
 * `exact`: compare through the document's shape, so that members the run added (an address,
 * a port the pre-state did not have) are removed too — confirm-or-revert undoes every change.
 */
export async function revertResources(
  prep: Prepared,
  o: EngineOptions & ApplyHooks,
  pre: PreState[],
  now: Record<string, Obj> | undefined,
  exact: boolean,
  onOutcome: (x: ChangeOutcome) => void,
  onWave: () => void,
): Promise<Reverted> {
  const cur = now ?? (await readAll(prep, o, new Set(pre.map((d) => d.plugin))));
  const diffs: ResourceDiff[] = [];
  const shapeOf = (d: PreState) => {
    const spec = (prep.doc.plugins[d.plugin]?.[d.collection] as Obj | undefined)?.[d.name];
    // compare like with like: what is there now, seen through the shape of what was there before
    return exact && isObj(spec) ? spec : (d.current ?? spec);
  };
  for (const d of pre) {
    const nowRaw = (cur[d.plugin]?.[d.collection] as Obj | undefined)?.[d.name];
    const before = d.current;
    const shape = shapeOf(d);
    const nowProj = nowRaw === undefined ? undefined : isObj(shape) ? (project(nowRaw, shape) as Obj) : (nowRaw as Obj);
    const base = { plugin: d.plugin, collection: d.collection, name: d.name, address: d.address, allowDestroy: true };
    if (before === undefined && nowProj !== undefined)
      diffs.push({
        ...base,
        action: 'delete',
        current: nowProj,
        desired: undefined,
        ops: [{ op: 'remove', path: '' }],
      });
    else if (before !== undefined && nowProj === undefined)
      diffs.push({ ...base, action: 'create', current: undefined, desired: before, ops: compare({}, before) });
    else if (before !== undefined && nowProj !== undefined) {
      const ops = compare(nowProj, before);
      if (ops.length) diffs.push({ ...base, action: 'update', current: nowProj, desired: before, ops });
    }
  }
  const plan = buildPlan(prep.plugins, diffs, collectEdges(prep.plugins, prep.doc.plugins));
  // newest first: reverse the forward order where the graph allows it
  const outcomes = await applyPlan(plan, prep.plugins, {
    settings: o.settings,
    log: o.log,
    allowDestroy: true,
    onIntent: o.onIntent,
    noteTempDir: o.noteTempDir,
    onOutcome,
    onWave,
  });
  const again = await readAll(prep, o, new Set(diffs.map((d) => d.plugin)));
  const verification: VerificationFailure[] = [];
  for (const d of diffs) {
    const got = (again[d.plugin]?.[d.collection] as Obj | undefined)?.[d.name];
    const want = pre.find((x) => x.address === d.address)?.current;
    const shape = exact
      ? shapeOf(pre.find((x) => x.address === d.address)!)
      : (want ?? shapeOf(pre.find((x) => x.address === d.address)!));
    const proj = got === undefined ? undefined : isObj(shape) ? project(got, shape) : got;
    if (canonical(proj) !== canonical(want))
      verification.push({
        address: d.address,
        ops: prep.redactor.ops(d.plugin, d.collection, compare(proj ?? {}, want ?? {})),
      });
  }
  return { outcomes, verification };
}
