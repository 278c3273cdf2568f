/** Dependency ordering: a deterministic topological sort with a cycle error naming the cycle. */
import { OpdError } from './errors.js';

/** deps[i] = indices that node i must come after. `key(i)` orders ties (sorted output). */
export function topoSort(
  n: number,
  deps: Set<number>[],
  key: (i: number) => string,
  label: (i: number) => string,
): number[] {
  const indeg = new Array(n).fill(0);
  const rev: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++)
    for (const d of deps[i]) {
      indeg[i]++;
      rev[d].push(i);
    }
  // ready nodes in a binary heap on keys computed once: the smallest key first, equal keys in
  // the order they became ready (deterministic; linear-logarithmic at tens of thousands)
  const keys = new Array<string>(n);
  const since = new Array<number>(n);
  let ticks = 0;
  const heap: number[] = [];
  const less = (a: number, b: number) => keys[a] < keys[b] || (keys[a] === keys[b] && since[a] < since[b]);
  const push = (i: number) => {
    keys[i] ??= key(i);
    since[i] = ticks++;
    let c = heap.push(i) - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (!less(heap[c], heap[p])) break;
      [heap[c], heap[p]] = [heap[p], heap[c]];
      c = p;
    }
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      for (let c = 0; ;) {
        const l = 2 * c + 1,
          r = l + 1;
        let m = c;
        if (l < heap.length && less(heap[l], heap[m])) m = l;
        if (r < heap.length && less(heap[r], heap[m])) m = r;
        if (m === c) break;
        [heap[c], heap[m]] = [heap[m], heap[c]];
        c = m;
      }
    }
    return top;
  };
  for (let i = 0; i < n; i++) if (indeg[i] === 0) push(i);
  const order: number[] = [];
  while (heap.length) {
    const i = pop();
    order.push(i);
    for (const j of rev[i]) if (--indeg[j] === 0) push(j);
  }
  if (order.length < n) {
    const cycle = findCycle(n, deps, new Set(order));
    throw new OpdError('invalid-document', `dependency cycle: ${cycle.map(label).join(' → ')}`, {
      hint: 'break the cycle: remove one of these depends_on entries',
    });
  }
  return order;
}

/** A cycle of the graph (its nodes, the first repeated at the end), or [] when there is none. Nodes in `done` are known to be on none. */
export function findCycle(n: number, deps: Set<number>[], done: Set<number> = new Set()): number[] {
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
