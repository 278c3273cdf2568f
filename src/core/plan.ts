/**
 * Plan: resource diffs → plugin changes → one dependency-ordered list. Pure: no backend here.
 */
import type { Change, Edge, Finding, Obj, Plugin, ReadContext, ResourceDiff } from './plugin.js';
import { topoSort } from './graph.js';
import { compare, desiredForCompare, isObj } from './diff.js';
import { pathToPointer } from './document.js';
import { OpdError } from './errors.js';

export interface PlannedChange extends Change {
  id: number;
  /** ids of the changes this one must follow */
  deps: number[];
}

export interface Plan {
  changes: PlannedChange[];
  diffs: ResourceDiff[];
}

/**
 * Every edge between the document's resources: the one computation that `opd validate` (cycles,
 * undeclared targets), `opd graph` (what it draws) and the plan (its order) all use.
 * - implicit edges the plugins declare (`edges()`),
 * - the orders the plugins' plans give (`after` naming another resource: a user after its
 *   primary group), drawn from a create of each resource the document names (plan() is pure),
 * - explicit `depends_on`, each with its JSON pointer (`at`) so that errors can name file:line.
 * Computed once per document (the result is shared: do not mutate it).
 */
export function collectEdges(plugins: Map<string, Plugin>, desired: Record<string, Obj>): Edge[] {
  let byPlugins = edgeMemo.get(desired);
  if (!byPlugins) edgeMemo.set(desired, (byPlugins = new WeakMap()));
  const hit = byPlugins.get(plugins);
  if (hit) return hit;
  const edges: Edge[] = [];
  // depends_on may name a resource as it is printed (`files/paths/etc/x.conf`) or exactly (`files/paths//etc/x.conf`)
  const shown = new Map<string, string>();
  for (const [name, section] of Object.entries(desired)) {
    const p = plugins.get(name);
    if (!p) continue;
    for (const collection of p.collections)
      if (isObj(section[collection]))
        for (const res of Object.keys(section[collection] as Obj)) {
          const a = `${name}/${collection}/${res}`;
          if (a !== displayAddress(a)) shown.set(displayAddress(a), a);
        }
  }
  const resolve = (to: string) => shown.get(to) ?? to;
  for (const [name, section] of Object.entries(desired)) {
    const p = plugins.get(name);
    if (!p) continue;
    if (p.edges) edges.push(...p.edges(section, desired));
    for (const collection of p.collections) {
      const coll = section[collection];
      if (!isObj(coll)) continue;
      for (const [res, spec] of Object.entries(coll)) {
        if (!isObj(spec)) continue;
        const from = `${name}/${collection}/${res}`;
        if (spec.state !== 'absent' && p.ordersAfterOthers !== false)
          edges.push(...planOrderEdges(p, collection, res, spec));
        if (Array.isArray(spec.depends_on))
          (spec.depends_on as string[]).forEach((to, i) =>
            edges.push({
              from,
              to: resolve(to),
              kind: 'depends_on',
              at: pathToPointer(['plugins', name, collection, res, 'depends_on', i]),
            }),
          );
      }
    }
  }
  byPlugins.set(plugins, edges);
  return edges;
}

const edgeMemo = new WeakMap<object, WeakMap<Map<string, Plugin>, Edge[]>>();

/** The other resources a plan for creating this resource orders its changes after (`after`). */
export function planOrderEdges(p: Plugin, collection: string, res: string, spec: Obj): Edge[] {
  const want = desiredForCompare(spec) as Obj;
  const address = `${p.name}/${collection}/${res}`;
  let changes: Change[];
  try {
    changes = p.plan({
      plugin: p.name,
      collection,
      name: res,
      address,
      action: 'create',
      current: undefined,
      desired: want,
      ops: compare({}, want),
      allowDestroy: true,
    });
  } catch {
    return []; // the real plan reports it
  }
  const out: Edge[] = [];
  for (const c of changes)
    for (const a of c.after ?? [])
      if (a !== c.resource && !a.startsWith(c.resource + '/'))
        out.push({ from: c.address, to: a, kind: 'order', exact: true });
  return out;
}

/**
 * Preconditions (Plugin.preflight) as changes that block the run: refused, so apply never
 * attempts them and `opd diff` shows them as refused; the engine stops before anything is applied.
 */
export async function preflightChanges(
  plugins: Map<string, Plugin>,
  ctx: ReadContext,
  sections: Record<string, Obj>,
  advisories: Finding[] = [],
): Promise<Change[]> {
  const out: Change[] = [];
  for (const [name, p] of [...plugins].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!p.preflight || !isObj(sections[name])) continue;
    const found = await p.preflight(ctx, sections[name]);
    advisories.push(...found.filter((f) => f.advisory));
    out.push(...findingChanges(name, found));
  }
  return out;
}

/** Preflight findings as refused `check` changes that block the run (advisory ones are warnings, not changes). */
export function findingChanges(plugin: string, findings: Finding[]): Change[] {
  return findings
    .filter((f) => !f.advisory)
    .map((f) => ({
      address: f.address,
      resource: f.address,
      plugin,
      action: 'check',
      summary: `FAILED ${f.message}`,
      blocker: f.message,
      refused: `precondition failed: ${f.message}`,
      refusedHint: 'fix the host so the check holds, or change the check',
      ...(f.fields
        ? { ops: Object.entries(f.fields).map(([k, value]) => ({ op: 'replace' as const, path: `/${k}`, value })) }
        : {}),
    }));
}

export function buildPlan(
  plugins: Map<string, Plugin>,
  diffs: ResourceDiff[],
  edges: Edge[],
  extra: Change[] = [],
): Plan {
  const changes: PlannedChange[] = [];
  // changes not derived from a diff of their own (refresh: triggered by other resources' changes)
  for (const c of extra) changes.push(Object.assign({}, c, { id: changes.length, deps: [] }));
  for (const d of diffs) {
    if (d.action === 'noop') continue;
    const p = plugins.get(d.plugin);
    if (!p) throw new OpdError('bug', `no plugin ${d.plugin}`);
    for (const c of p.plan(d)) {
      const id = changes.length;
      const refused =
        c.refused ??
        (c.destructive && !d.allowDestroy
          ? `destroys data: needs --allow-destroy or allow_destroy: true on ${d.address}`
          : undefined);
      // Object.assign: a spread followed by members is ~10x slower in V8 (10,000 changes)
      changes.push(Object.assign({}, c, { id, deps: [] }, refused ? { refused } : {}));
    }
  }
  const n = changes.length;
  const deps = changes.map(() => new Set<number>());
  const byAddress = new Map<string, number[]>();
  for (const c of changes) {
    const list = byAddress.get(c.address) ?? [];
    list.push(c.id);
    byAddress.set(c.address, list);
  }
  const isDelete = (c: PlannedChange) => c.action === 'delete';
  // explicit per-change ordering (exact addresses)
  for (const c of changes)
    for (const a of c.after ?? []) for (const j of byAddress.get(a) ?? []) if (j !== c.id) deps[c.id].add(j);
  // resource-level edges (prefix match, across resources); deletes run in reverse
  if (edges.length) {
    const byPrefix = new Map<string, number[]>();
    for (const c of changes) {
      const seen = new Set<string>();
      for (const a of [c.address, c.resource]) {
        const parts = a.split('/');
        for (let k = 1; k <= parts.length; k++) seen.add(parts.slice(0, k).join('/'));
      }
      for (const pre of seen) {
        const l = byPrefix.get(pre) ?? [];
        l.push(c.id);
        byPrefix.set(pre, l);
      }
    }
    for (const e of edges) {
      const from = byPrefix.get(e.from);
      const to = e.exact ? byAddress.get(e.to) : byPrefix.get(e.to);
      if (!from || !to) continue;
      for (const xi of from)
        for (const yi of to) {
          const x = changes[xi],
            y = changes[yi];
          if (x.resource === y.resource) continue;
          if (isDelete(y)) deps[y.id].add(x.id);
          else deps[x.id].add(y.id);
        }
    }
  }
  const order = topoSort(
    n,
    deps,
    (i) => changes[i].address + '\0' + String(i).padStart(8, '0'),
    (i) => `${changes[i].address} (${changes[i].action})`,
  );
  const renumber = new Map(order.map((old, nu) => [old, nu]));
  const sorted = order.map((old) => {
    const c = changes[old];
    return Object.assign({}, c, {
      id: renumber.get(old)!,
      deps: [...deps[old]].map((d) => renumber.get(d)!).sort((a, b) => a - b),
    });
  });
  return { changes: sorted, diffs };
}

/** The version of every JSON output (diff, apply, show, status, audit log, fleet status); schema/output/ holds their schemas. */
export const FORMAT_VERSION = 1;

/** One change as JSON (the plan of `opd diff -o json`, `opd apply -o json`, saved plans). */
export interface ChangeJSON {
  /** the change's address: the resource's, or a part of it (`systemd/units/x.service/enabled`) */
  address: string;
  /** the resource a part belongs to: only when `address` names a part of it */
  resource?: string;
  action: string;
  summary: string;
  reason?: string;
  refused?: string;
  ops?: unknown[];
  /** addresses of the changes this one runs after */
  depends_on: string[];
  /** unified diff of the texts the change carries (file content, unit files, XML, …) */
  diff?: string;
  /** why a text's diff is not shown (secret, binary, too large) or was cut */
  diff_note?: string;
}

export function changeJSON(c: PlannedChange, plan: Plan, content?: { diff?: string; diff_note?: string }): ChangeJSON {
  return {
    address: c.address,
    ...(c.resource !== c.address ? { resource: c.resource } : {}),
    action: c.action,
    summary: c.summary,
    ...(c.reason ? { reason: c.reason } : {}),
    ...(c.refused ? { refused: c.refused } : {}),
    ...(c.ops ? { ops: c.ops } : {}),
    depends_on: c.deps.map((d) => plan.changes[d].address).filter((a, i, all) => all.indexOf(a) === i),
    ...content,
  };
}

/** `content`: each change's diff fields by change id (src/core/content.ts `diffFields`); none for hashes. */
export function planJSON(
  plan: Plan,
  content?: (id: number) => { diff?: string; diff_note?: string } | undefined,
): { changes: ChangeJSON[]; summary: PlanSummary } {
  return {
    changes: plan.changes.map((c) => changeJSON(c, plan, content?.(c.id))),
    summary: summarize(plan),
  };
}

/**
 * What a plan does, counted: `create`, `change` (updates and every other verb: restart, enable,
 * run…) and `delete` as the text output says them, `refused` (counted apart, in none of the
 * others), `total`, and `actions`: the count of every action by name.
 */
export interface PlanSummary {
  create: number;
  change: number;
  delete: number;
  refused: number;
  total: number;
  actions: Record<string, number>;
}

export function summarize(plan: { changes: readonly Pick<Change, 'action' | 'refused'>[] }): PlanSummary {
  const s: PlanSummary = { create: 0, change: 0, delete: 0, refused: 0, total: plan.changes.length, actions: {} };
  for (const c of plan.changes) {
    s.actions[c.action] = (s.actions[c.action] ?? 0) + 1;
    if (c.refused) s.refused++;
    else if (c.action === 'create') s.create++;
    else if (c.action === 'delete') s.delete++;
    else s.change++;
  }
  s.actions = Object.fromEntries(Object.entries(s.actions).sort(([a], [b]) => (a < b ? -1 : 1)));
  return s;
}

/** Addresses as users write paths: `files/paths//etc/x` is shown `files/paths/etc/x` (both are accepted). */
export function displayAddress(a: string): string {
  return a.includes('//') ? a.replace(/\/\/+/g, '/') : a;
}

const SIGN: Record<string, string> = { create: '+', delete: '-', update: '~' };

export function formatChange(
  c: Pick<Change, 'address' | 'action' | 'summary' | 'reason'> & { refused?: string },
): string {
  const sign = SIGN[c.action] ?? '~';
  const verb = c.action in SIGN ? '' : `${c.action}`;
  const what = [verb, c.summary].filter(Boolean).join(' ');
  const reason = c.reason ? ` (${c.reason})` : '';
  const refused = c.refused ? `  [refused: ${c.refused}]` : '';
  return `${c.refused ? '!' : sign} ${displayAddress(c.address)}${what ? ': ' + what : ''}${reason}${refused}`;
}
