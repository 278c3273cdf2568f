import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { topoSort } from '../../../src/core/graph.js';

describe('dependency ordering', () => {
  it('orders dependencies first and ties by key', () => {
    const names = ['c', 'a', 'b', 'd'];
    const deps = [new Set<number>(), new Set([0]), new Set<number>(), new Set([1, 2])];
    const order = topoSort(
      4,
      deps,
      (i) => names[i],
      (i) => names[i],
    ).map((i) => names[i]);
    expect(order).toEqual(['b', 'c', 'a', 'd']);
  });

  it('names every member of a cycle', () => {
    const names = ['x', 'y', 'z', 'free'];
    const deps = [new Set([1]), new Set([2]), new Set([0]), new Set<number>()];
    expect(() =>
      topoSort(
        4,
        deps,
        (i) => names[i],
        (i) => names[i],
      ),
    ).toThrow(/dependency cycle: x → y → z → x/);
  });

  it('is stable for ten thousand independent nodes', () => {
    const n = 10_000;
    const deps = Array.from({ length: n }, () => new Set<number>());
    const key = (i: number) => String(n - i).padStart(6, '0');
    const order = topoSort(n, deps, key, key);
    expect(order[0]).toBe(n - 1);
    expect(order[n - 1]).toBe(0);
  });

  it('orders any graph exactly like the sorted-queue definition it replaced, equal keys included', () => {
    // the former implementation: a sorted ready list, new ready nodes merged in after equal keys
    const reference = (n: number, deps: Set<number>[], key: (i: number) => string): number[] => {
      const cmp = (a: number, b: number) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
      const indeg = deps.map((d) => d.size);
      const rev: number[][] = Array.from({ length: n }, () => []);
      deps.forEach((ds, i) => ds.forEach((d) => rev[d].push(i)));
      const ready = [...Array(n).keys()].filter((i) => indeg[i] === 0).sort(cmp);
      const order: number[] = [];
      while (ready.length) {
        const i = ready.shift()!;
        order.push(i);
        const fresh = rev[i].filter((j) => --indeg[j] === 0).sort(cmp);
        const out: number[] = [];
        let a = 0,
          b = 0;
        while (a < ready.length || b < fresh.length)
          out.push(b >= fresh.length || (a < ready.length && cmp(ready[a], fresh[b]) <= 0) ? ready[a++] : fresh[b++]);
        ready.splice(0, ready.length, ...out);
      }
      return order;
    };
    const graph = fc
      .integer({ min: 1, max: 40 })
      .chain((n) =>
        fc.tuple(
          fc.constant(n),
          fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 3 * n }),
          fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: n, maxLength: n }),
        ),
      );
    fc.assert(
      fc.property(graph, ([n, pairs, names]) => {
        // edges only from a higher to a lower index: acyclic
        const deps = Array.from({ length: n }, () => new Set<number>());
        for (const [x, y] of pairs) if (x !== y) deps[Math.max(x, y)].add(Math.min(x, y));
        const key = (i: number) => names[i];
        expect(topoSort(n, deps, key, key)).toEqual(reference(n, deps, key));
      }),
      { numRuns: 300 },
    );
  });
});
