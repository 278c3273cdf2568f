import { describe, expect, it } from 'vitest';
import { topoSort } from '../../../src/core/graph.js';

describe('dependency ordering', () => {
  it('orders dependencies first and ties by key', () => {
    const names = ['c', 'a', 'b', 'd'];
    const deps = [new Set<number>(), new Set([0]), new Set<number>(), new Set([1, 2])];
    const order = topoSort(4, deps, (i) => names[i], (i) => names[i]).map((i) => names[i]);
    expect(order).toEqual(['b', 'c', 'a', 'd']);
  });

  it('names every member of a cycle', () => {
    const names = ['x', 'y', 'z', 'free'];
    const deps = [new Set([1]), new Set([2]), new Set([0]), new Set<number>()];
    expect(() => topoSort(4, deps, (i) => names[i], (i) => names[i])).toThrow(/dependency cycle: x → y → z → x/);
  });

  it('is stable for ten thousand independent nodes', () => {
    const n = 10_000;
    const deps = Array.from({ length: n }, () => new Set<number>());
    const key = (i: number) => String(n - i).padStart(6, '0');
    const order = topoSort(n, deps, key, key);
    expect(order[0]).toBe(n - 1);
    expect(order[n - 1]).toBe(0);
  });
});
