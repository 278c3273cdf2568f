/** Dependency ordering: a deterministic topological sort with a cycle error naming the cycle. */
import { OpdError } from './errors.js';

/** deps[i] = indices that node i must come after. `key(i)` orders ties (sorted output). */
export function topoSort(n: number, deps: Set<number>[], key: (i: number) => string, label: (i: number) => string): number[] {
  const indeg = new Array(n).fill(0);
  const rev: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++)
    for (const d of deps[i]) {
      indeg[i]++;
      rev[d].push(i);
    }
  // a small sorted queue: n is at most tens of thousands and this keeps output deterministic
  const ready = [...Array(n).keys()].filter((i) => indeg[i] === 0).sort((a, b) => cmp(key(a), key(b)));
  const order: number[] = [];
  while (ready.length) {
    const i = ready.shift()!;
    order.push(i);
    const fresh: number[] = [];
    for (const j of rev[i]) if (--indeg[j] === 0) fresh.push(j);
    if (fresh.length) {
      fresh.sort((a, b) => cmp(key(a), key(b)));
      merge(ready, fresh, (a, b) => cmp(key(a), key(b)));
    }
  }
  if (order.length < n) {
    const cycle = findCycle(n, deps, new Set(order));
    throw new OpdError('invalid-document', `dependency cycle: ${cycle.map(label).join(' → ')}`, {
      hint: 'break the cycle: remove one of these depends_on entries',
    });
  }
  return order;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function merge(into: number[], sorted: number[], c: (a: number, b: number) => number): void {
  const out: number[] = [];
  let i = 0, j = 0;
  while (i < into.length || j < sorted.length) {
    if (j >= sorted.length || (i < into.length && c(into[i], sorted[j]) <= 0)) out.push(into[i++]);
    else out.push(sorted[j++]);
  }
  into.splice(0, into.length, ...out);
}

function findCycle(n: number, deps: Set<number>[], done: Set<number>): number[] {
  const state = new Array(n).fill(0); // 0 new, 1 on stack, 2 finished
  const stack: number[] = [];
  const visit = (i: number): number[] | undefined => {
    state[i] = 1;
    stack.push(i);
    for (const d of [...deps[i]].sort((a, b) => a - b)) {
      if (done.has(d)) continue;
      if (state[d] === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (state[d] === 0) {
        const c = visit(d);
        if (c) return c;
      }
    }
    stack.pop();
    state[i] = 2;
    return undefined;
  };
  for (let i = 0; i < n; i++) {
    if (done.has(i) || state[i] !== 0) continue;
    const c = visit(i);
    if (c) return c;
  }
  return [];
}
