import { describe, expect, it } from 'vitest';
import ovs from '../../../../src/plugins/ovs/index.js';
import type { NormalizeContext } from '../../../../src/core/plugin.js';

const ctx: NormalizeContext = { remap: () => {}, warn: () => {}, refuse: () => {} };

describe('the ovs section as normalized', () => {
  it('keeps ports that have nothing to normalize as they are, without copying the map', () => {
    const ports = { p1: { type: 'internal', tag: 10 }, p2: {} };
    const section = { bridges: { br0: { ports } } };
    const out = ovs.normalize!(section, ctx) as { bridges: Record<string, { ports: unknown }> };
    expect(out.bridges.br0.ports).toBe(ports);
    expect(out.bridges.br0.ports).toEqual({ p1: { type: 'internal', tag: 10 }, p2: {} });
  });

  it('sorts trunks, moves a peer out of options and prunes bond members in copies, in the same key order', () => {
    const plain = { type: 'internal' };
    const ports = {
      a: plain,
      t: { trunks: [30, 10, 20] },
      patch: { type: 'patch', options: { peer: 'x', other: '1' } },
      bond: { interfaces: { e1: {}, e2: {} } },
      z: plain,
      ['__proto__']: { tag: 5 },
    };
    const before = JSON.stringify(ports);
    const out = ovs.normalize!({ bridges: { br0: { ports } } }, ctx) as {
      bridges: Record<string, { ports: Record<string, unknown> }>;
    };
    const p = out.bridges.br0.ports;
    expect(Object.keys(p)).toEqual(['a', 't', 'patch', 'bond', 'z', '__proto__']);
    expect(p.t).toEqual({ trunks: [10, 20, 30] });
    expect(p.patch).toEqual({ type: 'patch', peer: 'x', options: { other: '1' } });
    expect(p.bond).toEqual({ interfaces: { e1: {}, e2: {} }, prune: { interfaces: true } });
    expect(p.a).toBe(plain);
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(p, '__proto__')?.value).toEqual({ tag: 5 });
    expect(JSON.stringify(ports)).toBe(before);
  });
});
