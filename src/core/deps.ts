/**
 * The dependency mistakes `opd validate` catches without a host, on the same edges the plan
 * orders by (plan.ts collectEdges): a `depends_on` naming an address the document does not
 * declare (with "did you mean" for near misses), and cycles between whole resources, each edge
 * of the cycle named with its file:line (a `depends_on` entry) or its kind (an implicit edge).
 */
import { distance } from 'fastest-levenshtein';
import { isObj } from './diff.js';
import type { LoadedDocument, StateDocument } from './document.js';
import { pathToPointer } from './document.js';
import { invalidDocument, type Problem } from './errors.js';
import { findCycle } from './graph.js';
import type { Edge, Plugin } from './plugin.js';

/** Every resource address the document declares (`plugin/collection/name`), absent ones included. */
export function declaredAddresses(plugins: Map<string, Plugin>, doc: StateDocument): Set<string> {
  const out = new Set<string>();
  for (const [name, p] of plugins) {
    const section = doc.plugins[name];
    if (!isObj(section)) continue;
    for (const c of p.collections) {
      const coll = section[c];
      if (isObj(coll)) for (const r of Object.keys(coll)) out.add(`${name}/${c}/${r}`);
    }
  }
  return out;
}

/** The declared resource an address is (or lies under: `ovs/bridges/br0/ports/p1`), if any. */
export function resourceOf(address: string, declared: Set<string>): string | undefined {
  if (declared.has(address)) return address;
  for (let i = address.lastIndexOf('/'); i > 0; i = address.lastIndexOf('/', i - 1)) {
    const pre = address.slice(0, i);
    if (declared.has(pre)) return pre;
  }
  return undefined;
}

/** The declared addresses closest to a mistyped one (a missing `/`, a typo), closest first. */
export function nearMisses(address: string, declared: Set<string>): string[] {
  const limit = Math.max(1, Math.floor(address.length / 10));
  const scored = [...declared]
    .map((d) => [d, distance(d, address)] as const)
    .filter(([, k]) => k <= limit)
    .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
  // the closest ones only (a missing `/` beats a sibling two letters away)
  return scored
    .filter(([, k]) => k === scored[0][1])
    .slice(0, 3)
    .map(([d]) => d);
}

function located(p: Problem, loaded: LoadedDocument | undefined): Problem {
  if (!loaded) return p;
  const pos = loaded.locate(p.pointer);
  return { ...p, file: loaded.file, line: pos?.line, col: pos?.col };
}

/** Problems with the document's dependencies; throws invalid-document (exit 65) with all of them. */
export function checkDependencies(
  edges: Edge[],
  plugins: Map<string, Plugin>,
  doc: StateDocument,
  loaded?: LoadedDocument,
): void {
  const declared = declaredAddresses(plugins, doc);
  const problems: Problem[] = [];
  // 1. depends_on names what the document declares (a resource, or something under one)
  for (const e of edges) {
    if (e.kind !== 'depends_on' || resourceOf(e.to, declared)) continue;
    const near = nearMisses(e.to, declared);
    problems.push(
      located(
        {
          pointer: e.at ?? resourcePointer(e.from, declared),
          message: `${e.from} depends_on ${JSON.stringify(e.to)}, an address the document does not declare`,
          fix: near.length
            ? `did you mean ${near.map((n) => `"${n}"`).join(' or ')}?`
            : 'name a resource of this document as plugin/collection/name (e.g. ovs/bridges/br0, files/paths//etc/x.conf)',
        },
        loaded,
      ),
    );
  }
  // 2. no cycle between whole resources (sub-resources' cycles are reported by the plan)
  const es = edges.filter((e) => declared.has(e.from) && declared.has(e.to) && e.from !== e.to);
  const nodes = [...new Set(es.flatMap((e) => [e.from, e.to]))].sort();
  const idx = new Map(nodes.map((n, i) => [n, i]));
  const deps = nodes.map(() => new Set<number>());
  for (const e of es) deps[idx.get(e.from)!].add(idx.get(e.to)!);
  const cycle = findCycle(nodes.length, deps);
  if (cycle.length) {
    const names = cycle.map((i) => nodes[i]);
    const text = names.join(' → ');
    for (let k = 0; k + 1 < names.length; k++) {
      const [a, b] = [names[k], names[k + 1]];
      const e =
        es.find((x) => x.from === a && x.to === b && x.kind === 'depends_on') ??
        es.find((x) => x.from === a && x.to === b)!;
      problems.push(
        located(
          {
            pointer: e.at ?? resourcePointer(a, declared),
            message:
              e.kind === 'depends_on'
                ? `dependency cycle ${text}: ${a} depends_on ${b} here`
                : `dependency cycle ${text}: ${a} comes after ${b} (implicit: ${e.kind ?? 'edge'})`,
            fix: 'break the cycle: remove one of its depends_on entries',
          },
          loaded,
        ),
      );
    }
  }
  if (problems.length) throw invalidDocument(loaded?.file, problems);
}

/** The JSON pointer of a declared resource (`/plugins/p/collection/name`). */
function resourcePointer(address: string, declared: Set<string>): string {
  const r = resourceOf(address, declared) ?? address;
  const [p, c] = r.split('/');
  return pathToPointer(['plugins', p, c, r.slice(p.length + c.length + 2)]);
}

/**
 * The edges for drawing: between declared resources, or a part of one (a group's `members`) where
 * the plan orders that part alone; edges to what the document does not declare are left out (they
 * order nothing).
 */
export function resourceEdges(edges: Edge[], declared: Set<string>): { from: string; to: string; kind: string }[] {
  const seen = new Map<string, { from: string; to: string; kind: string }>();
  for (const e of edges) {
    const fr = resourceOf(e.from, declared);
    const tr = resourceOf(e.to, declared);
    if (!fr || !tr || fr === tr) continue;
    const [from, to] = [e.from, e.to];
    const kind = e.kind ?? 'implicit';
    seen.set(`${from}\0${to}\0${kind}`, { from, to, kind });
  }
  // an order the plan gives that a named edge (parent, owner, depends_on…) already says: drawn once
  const named = new Set([...seen.values()].filter((e) => e.kind !== 'order').map((e) => `${e.from}\0${e.to}`));
  for (const [k, e] of seen) if (e.kind === 'order' && named.has(`${e.from}\0${e.to}`)) seen.delete(k);
  return [...seen.values()].sort((a, b) =>
    a.from !== b.from ? (a.from < b.from ? -1 : 1) : a.to !== b.to ? (a.to < b.to ? -1 : 1) : a.kind < b.kind ? -1 : 1,
  );
}
