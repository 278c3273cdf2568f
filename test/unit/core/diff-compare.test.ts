import { describe, expect, it } from 'vitest';
import { desiredForCompare } from '../../../src/core/diff.js';

describe('the desired value as compared', () => {
  it('is the document’s own object when it has nothing to remove', () => {
    const d = { a: 1, b: { c: [1, { d: 2 }], e: { f: 'x' } } };
    expect(desiredForCompare(d)).toBe(d);
  });

  it('drops meta keys, state present and absent children in a copy, sharing untouched subtrees', () => {
    const keep = { f: 'x' };
    const d = {
      a: 1,
      depends_on: ['ovs/bridges/br0'],
      state: 'present',
      b: { gone: { state: 'absent' }, keep, allow_destroy: true },
      c: keep,
    };
    const before = JSON.stringify(d);
    const out = desiredForCompare(d) as Record<string, unknown>;
    expect(out).toEqual({ a: 1, b: { keep: { f: 'x' } }, c: { f: 'x' } });
    expect(Object.keys(out)).toEqual(['a', 'b', 'c']);
    expect(out.c).toBe(keep);
    expect((out.b as Record<string, unknown>).keep).toBe(keep);
    expect(JSON.stringify(d)).toBe(before);
  });
});
