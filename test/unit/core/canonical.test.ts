import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonical } from '../../../src/core/canonical.js';

/** The definition canonical() had before its fast path: what every value must still give. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return '[' + value.map((v) => reference(v === undefined ? null : v)).join(',') + ']';
  const keys = Object.keys(value as object)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return (
    '{' + keys.map((k) => JSON.stringify(k) + ':' + reference((value as Record<string, unknown>)[k])).join(',') + '}'
  );
}

describe('canonical JSON', () => {
  it('sorts keys at every depth and drops undefined members', () => {
    expect(canonical({ b: { d: 1, c: [{ z: 1, y: undefined }] }, a: 2 })).toBe('{"a":2,"b":{"c":[{"z":1}],"d":1}}');
  });

  it('gives what the reference definition gives for edge values', () => {
    const cases: unknown[] = [
      null,
      undefined,
      1,
      -0,
      NaN,
      Infinity,
      'a"\n\u2028\ud800',
      true,
      [undefined, NaN, () => 1, Symbol('s')],
      { a: undefined },
      { b: 1, a: () => 1, c: Symbol('s') },
      new Date(0),
      { at: new Date(5) },
      Buffer.from('ab'),
      [[], {}],
      { '10': 1, '9': 2, a: 3 },
      { '1': { b: 1, a: 2 } },
      { toJSON: () => 1, a: 1 },
      { é: 1, e: 2, Z: 3 },
      JSON.parse('{"__proto__":{"b":1,"a":2},"x":1}'),
      { a: { b: NaN, c: -Infinity } },
      new Map([[1, 2]]),
    ];
    for (const v of cases) expect(canonical(v)).toBe(reference(v));
  });

  it('gives what the reference definition gives for any JSON-like value', () => {
    const member = fc.oneof(fc.constant(undefined), fc.double(), fc.string(), fc.boolean(), fc.constant(null));
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        member,
        fc.array(tie('node')),
        fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('0', '7', '12', '__proto__', 'toJSON')), tie('node')),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => canonical(v) === reference(v)),
      { numRuns: 500 },
    );
  });

  it('leaves the value it writes unchanged', () => {
    const v = { b: [{ d: 1, c: 2 }], a: { y: undefined, x: 1 } };
    const before = JSON.stringify(v);
    canonical(v);
    expect(JSON.stringify(v)).toBe(before);
    expect(Object.keys(v)).toEqual(['b', 'a']);
  });
});
