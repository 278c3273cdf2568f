import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDocument } from '../../../../src/core/document.js';
import { normalizeDocument } from '../../../../src/core/normalize.js';
import { validateDocument } from '../../../../src/core/validate.js';
import { loadAll, registry } from '../../../../src/plugins/index.js';
import { tmp } from '../../../helpers/opd.js';

async function normalized(text: string): Promise<Record<string, unknown>> {
  const f = join(tmp('opd-net-norm-'), 'doc.yaml');
  writeFileSync(f, text);
  const loaded = await loadDocument(f);
  const doc = normalizeDocument(loaded, await loadAll(), registry.manifests);
  validateDocument(doc, loaded);
  return (doc as { plugins: Record<string, unknown> }).plugins;
}

describe('net normalization', () => {
  it('maps op-dbus full mode: OVS bridges to the ovs plugin, their addressing to net as kind ovs', async () => {
    const p = await normalized(`
version: 1
plugins:
  net:
    interfaces:
      - name: ovsbr0
        type: ovs-bridge
        ports: [eth0]
        ipv4: { enabled: true, dhcp: false, address: [{ ip: 192.168.1.10, prefix: 24 }], gateway: 192.168.1.1 }
      - name: mesh
        type: ovs-bridge
        ports: []
`);
    expect(p.ovs).toEqual({ bridges: { ovsbr0: { ports: { eth0: {} } }, mesh: { ports: {} } } });
    // the bridge takes over its uplink port's addresses (take_over defaults to its system ports)
    expect(p.net).toEqual({
      interfaces: {
        ovsbr0: {
          kind: 'ovs',
          up: true,
          addresses: { '192.168.1.10/24': {} },
          routes: { default: { via: '192.168.1.1' } },
          take_over: ['eth0'],
        },
      },
    });
  });

  it('defaults take_over of an OVS bridge to its system ports and bond members, never internal ports, and keeps an explicit one', async () => {
    const p = await normalized(`
version: 1
plugins:
  ovs:
    bridges:
      br1: { ports: { eth2: {}, vi1: { type: internal }, bond0: { interfaces: { eth4: {}, eth3: {} } } } }
      br2: { ports: { eth5: {} } }
  net:
    interfaces:
      br1: { kind: ovs, addresses: [10.9.0.1/24] }
      br2: { kind: ovs, take_over: [] }
`);
    expect((p.net as { interfaces: Record<string, { take_over?: string[] }> }).interfaces.br1.take_over).toEqual([
      'eth2',
      'eth3',
      'eth4',
    ]);
    expect((p.net as { interfaces: Record<string, { take_over?: string[] }> }).interfaces.br2.take_over).toEqual([]);
  });

  it('maps a Linux bridge with ports to interfaces with master', async () => {
    const p = await normalized(`
version: 1
plugins:
  net:
    interfaces:
      - { name: br0, type: bridge, ports: [eth1] }
`);
    expect(p.net).toEqual({ interfaces: { br0: { kind: 'bridge' }, eth1: { master: 'br0' } } });
  });

  it('canonicalizes address and route keys the way ip prints them', async () => {
    const p = await normalized(`
version: 1
plugins:
  net:
    interfaces:
      br0: { addresses: ["FD00:0:0::1/64"], routes: { "10.9.1.0/16": { via: "10.0.0.1" }, default: { via: "fd00::fe" } } }
`);
    expect(p.net).toEqual({
      interfaces: {
        br0: {
          addresses: { 'fd00::1/64': {} },
          routes: { '10.9.0.0/16': { via: '10.0.0.1' }, '::/0': { via: 'fd00::fe' } },
        },
      },
    });
  });
});
