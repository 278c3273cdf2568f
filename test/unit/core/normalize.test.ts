import { describe, expect, it } from 'vitest';
import { parseText } from '../../../src/core/document.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { OpdError } from '../../../src/core/errors.js';

describe('normalizing other input forms', () => {
  it('maps op-dbus net.interfaces of type ovs-bridge to ovs bridges', async () => {
    const text = JSON.stringify({
      version: 1,
      plugins: {
        net: { interfaces: [{ name: 'ovsbr0', type: 'ovs-bridge', ports: ['eth0'] }, { name: 'mesh', type: 'ovs-bridge', ports: [] }] },
      },
    });
    const p = await prepareLoaded(parseText(Buffer.from(text), 'opdbus.json'));
    expect(p.doc.plugins.ovs).toEqual({ bridges: { ovsbr0: { ports: { eth0: {} } }, mesh: { ports: {} } } });
    expect(p.doc.plugins.net).toBeUndefined();
  });

  it('turns arrays of named bridges and ports into maps', async () => {
    const text = 'version: 1\nplugins:\n  ovs:\n    bridges:\n      - name: br0\n        ports:\n          - name: p1\n            tag: 10\n';
    const p = await prepareLoaded(parseText(Buffer.from(text), 'arr.yaml'));
    expect(p.doc.plugins.ovs).toEqual({ bridges: { br0: { ports: { p1: { tag: 10 } } } } });
  });

  it('points errors in normalized arrays back at the source line', async () => {
    const text = 'version: 1\nplugins:\n  ovs:\n    bridges:\n      - name: br0\n        ports:\n          - name: p1\n            tag: 99999\n';
    try {
      await prepareLoaded(parseText(Buffer.from(text), 'arr.yaml'));
      throw new Error('accepted');
    } catch (err) {
      const e = err as OpdError;
      expect(e.problems[0].pointer).toBe('/plugins/ovs/bridges/br0/ports/p1/tag');
      expect(e.problems[0].line).toBe(8);
    }
  });

  it('moves a patch peer given as an option to the peer field and sorts trunks', async () => {
    const text = 'version: 1\nplugins:\n  ovs:\n    bridges:\n      br0:\n        ports:\n          px: { type: patch, options: { peer: py } }\n          t: { trunks: [30, 10, 20] }\n';
    const p = await prepareLoaded(parseText(Buffer.from(text), 'x.yaml'));
    const ports = (p.doc.plugins.ovs.bridges as Record<string, { ports: Record<string, unknown> }>).br0.ports;
    expect(ports.px).toEqual({ type: 'patch', peer: 'py', options: {} });
    expect(ports.t).toEqual({ trunks: [10, 20, 30] });
  });

  it('makes bond membership exact by pruning undeclared members', async () => {
    const text = 'version: 1\nplugins:\n  ovs:\n    bridges:\n      br0:\n        ports:\n          b0: { interfaces: { a: {}, b: {} } }\n';
    const p = await prepareLoaded(parseText(Buffer.from(text), 'x.yaml'));
    const ports = (p.doc.plugins.ovs.bridges as Record<string, { ports: Record<string, { prune?: unknown }> }>).br0.ports;
    expect(ports.b0.prune).toEqual({ interfaces: true });
  });
});
