import { describe, expect, it } from 'vitest';
import { parseText } from '../../../src/core/document.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { registry } from '../../../src/plugins/index.js';
import { OpdError } from '../../../src/core/errors.js';

describe('normalizing other input forms', () => {
  it('maps op-dbus net.interfaces of type ovs-bridge to ovs bridges', async () => {
    const text = JSON.stringify({
      version: 1,
      plugins: {
        net: {
          interfaces: [
            { name: 'ovsbr0', type: 'ovs-bridge', ports: ['eth0'] },
            { name: 'mesh', type: 'ovs-bridge', ports: [] },
          ],
        },
      },
    });
    const p = await prepareLoaded(registry, parseText(Buffer.from(text), 'opdbus.json'));
    expect(p.doc.plugins.ovs).toEqual({ bridges: { ovsbr0: { ports: { eth0: {} } }, mesh: { ports: {} } } });
    expect(p.doc.plugins.net).toBeUndefined();
  });

  it('turns arrays of named bridges and ports into maps', async () => {
    const text =
      'version: 1\nplugins:\n  ovs:\n    bridges:\n      - name: br0\n        ports:\n          - name: p1\n            tag: 10\n';
    const p = await prepareLoaded(registry, parseText(Buffer.from(text), 'arr.yaml'));
    expect(p.doc.plugins.ovs).toEqual({ bridges: { br0: { ports: { p1: { tag: 10 } } } } });
  });

  it('points errors in normalized arrays back at the source line', async () => {
    const text =
      'version: 1\nplugins:\n  ovs:\n    bridges:\n      - name: br0\n        ports:\n          - name: p1\n            tag: 99999\n';
    try {
      await prepareLoaded(registry, parseText(Buffer.from(text), 'arr.yaml'));
      throw new Error('accepted');
    } catch (err) {
      const e = err as OpdError;
      expect(e.problems[0].pointer).toBe('/plugins/ovs/bridges/br0/ports/p1/tag');
      expect(e.problems[0].line).toBe(8);
    }
  });

  it('moves a patch peer given as an option to the peer field and sorts trunks', async () => {
    const text =
      'version: 1\nplugins:\n  ovs:\n    bridges:\n      br0:\n        ports:\n          px: { type: patch, options: { peer: py } }\n          t: { trunks: [30, 10, 20] }\n';
    const p = await prepareLoaded(registry, parseText(Buffer.from(text), 'x.yaml'));
    const ports = (p.doc.plugins.ovs.bridges as Record<string, { ports: Record<string, unknown> }>).br0.ports;
    expect(ports.px).toEqual({ type: 'patch', peer: 'py', options: {} });
    expect(ports.t).toEqual({ trunks: [10, 20, 30] });
  });

  it('makes bond membership exact by pruning undeclared members', async () => {
    const text =
      'version: 1\nplugins:\n  ovs:\n    bridges:\n      br0:\n        ports:\n          b0: { interfaces: { a: {}, b: {} } }\n';
    const p = await prepareLoaded(registry, parseText(Buffer.from(text), 'x.yaml'));
    const ports = (p.doc.plugins.ovs.bridges as Record<string, { ports: Record<string, { prune?: unknown }> }>).br0
      .ports;
    expect(ports.b0.prune).toEqual({ interfaces: true });
  });
});

describe('the warnings channel of normalization (NormalizeContext.warn / refuse)', () => {
  it('locates warnings in the source and keeps the document valid', async () => {
    const text =
      'version: 1\nplugins:\n  net:\n    interfaces:\n      - name: br9\n        type: bridge\n        ipv4:\n          enabled: true\n          address: [{ ip: 10.1.0.1, prefix: 24 }]\n          dns: [10.1.0.53]\n';
    const p = await prepareLoaded(registry, parseText(Buffer.from(text), 'w.yaml'));
    expect(p.warnings).toEqual([
      expect.objectContaining({
        file: 'w.yaml',
        line: 10,
        col: 11,
        pointer: '/plugins/net/interfaces/br9/ipv4/dns',
        message: expect.stringContaining('ipv4.dns (10.1.0.53) is accepted but net does not act on it'),
      }),
    ]);
    expect(p.doc.plugins.net).toEqual({
      interfaces: { br9: { kind: 'bridge', up: true, addresses: { '10.1.0.1/24': {} } } },
    });
  });

  it('reports refusals with the schema problems, each at its source position', async () => {
    const text =
      'version: 1\nplugins:\n  net:\n    interfaces:\n      - name: br9\n        type: bridge\n        ipv4: { enabled: true, dhcp: true }\n        mtuu: 9000\n';
    try {
      await prepareLoaded(registry, parseText(Buffer.from(text), 'r.yaml'));
      throw new Error('accepted');
    } catch (err) {
      const e = err as OpdError;
      expect(e.exitCode).toBe(65);
      expect(e.problems.map((x) => [x.line, x.pointer, x.message.slice(0, 40)])).toEqual([
        [7, '/plugins/net/interfaces/br9/ipv4/dhcp', 'op-dbus ipv4.dhcp: true is not supported'],
        [8, '/plugins/net/interfaces/br9/mtuu', 'unknown key "mtuu"'],
      ]);
    }
  });

  it('does not refuse op-dbus plugin settings a registered plugin declares, and wraps bare sections', async () => {
    const text = JSON.stringify({ systemd: { units: { 'a.service': { enabled: true } } }, _note: 'x' });
    const p = await prepareLoaded(registry, parseText(Buffer.from(text), 'bare.json'));
    expect(p.doc.plugins.systemd).toEqual({ units: { 'a.service': { enabled: true } } });
    expect(p.warnings.map((w) => w.message)).toEqual([
      expect.stringContaining('1 op-dbus note key ignored (_note)'),
      expect.stringContaining('op-dbus plugin sections without the document around them'),
    ]);
  });
});
