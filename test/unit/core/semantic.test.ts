/**
 * The semantic rules of the plugins' manifests (src/plugins/<name>/rules.ts), run by src/core/semantic.ts: each catches one document the schema accepts but
 * a backend would refuse, located at file:line like a schema error, and lets the fixed one pass.
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseText } from '../../../src/core/document.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { registry } from '../../../src/plugins/index.js';
import { OpdError } from '../../../src/core/errors.js';
import { installTargets } from '../../../src/plugins/systemd/rules.js';
import { doc, opd, tmp } from '../../helpers/opd.js';

async function problems(text: string, settings = {}): Promise<string[]> {
  try {
    await prepareLoaded(registry, parseText(text, 'state.yaml'), settings);
    return [];
  } catch (err) {
    if (!(err instanceof OpdError) || err.kind !== 'invalid-document') throw err;
    return err
      .format()
      .split('\n')
      .slice(1)
      .filter((l) => l.startsWith('  state.yaml:'));
  }
}

describe('semantic rules', () => {
  it('takes every rule from the manifests, each with a unique id, plugin by plugin', () => {
    expect(registry.rules.map((r) => r.id)).toEqual([
      'libvirt-forward-needs-ip',
      'no-duplicate-addresses',
      'ovs-bridge-declared',
      'systemd-install-target-exists',
    ]);
  });

  it('refuses a libvirt network that forwards with NAT by default but has no ip, at its line', async () => {
    const p = await problems(
      'version: 1\nplugins:\n  libvirt:\n    networks:\n      isolated1: { forward: isolated }\n      natnet:\n        autostart: true\n',
    );
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(
      /^ {2}state\.yaml:6:7: plugins\.libvirt\.networks\.natnet: .*no ip.*nat forwarding requested, but no IP address provided.*\[libvirt-forward-needs-ip\]/,
    );
    expect(
      await problems(
        'version: 1\nplugins:\n  libvirt:\n    networks:\n      natnet: { ip: { address: 192.168.150.1, prefix: 24 } }\n',
      ),
    ).toEqual([]);
    expect(
      await problems('version: 1\nplugins:\n  libvirt:\n    networks:\n      r: { forward: route }\n'),
    ).toHaveLength(1);
  });

  it('refuses a container veth, a tagged domain interface and a kind-ovs interface on OVS bridges the ovs section does not declare', async () => {
    const text = [
      'version: 1',
      'plugins:',
      '  ovs:',
      '    bridges:',
      '      mesh: { ports: { vi5: { type: internal, tag: 5 } } }',
      '  lxc:',
      '    containers:',
      '      c1: { template: busybox, network: [{ type: veth, link: mseh }] }',
      '      c2: { template: busybox, network: [{ type: veth, link: mesh }] }',
      '  libvirt:',
      '    domains:',
      '      vm1: { memory: 64, interfaces: [{ ovs_bridge: ovsbr9, vlan: 10 }] }',
      '  net:',
      '    interfaces:',
      '      vi5: { kind: ovs }',
      '      vi6: { kind: ovs }',
      '',
    ].join('\n');
    const p = await problems(text);
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(
      /state\.yaml:8:\d+: plugins\.lxc\.containers\.c1\.network\[0\]\.link: .*"mseh".*ovs bridges: mesh.*\[ovs-bridge-declared\]/,
    );
    expect(p[1]).toMatch(
      /state\.yaml:12:\d+: plugins\.libvirt\.domains\.vm1\.interfaces\[0\]\.ovs_bridge: .*tagged 10 to OVS bridge "ovsbr9"/,
    );
    expect(p[2]).toMatch(/state\.yaml:16:\d+: plugins\.net\.interfaces\.vi6\.kind: /);
    // without an ovs section the bridges may be the host's own: nothing to say
    expect(
      await problems(
        'version: 1\nplugins:\n  lxc:\n    containers:\n      c1: { template: busybox, network: [{ type: veth, link: lxcbr0 }] }\n',
      ),
    ).toEqual([]);
  });

  it('refuses a unit file WantedBy a target that is neither declared, special nor on disk under --root', async () => {
    const root = tmp('opd-semantic-');
    const unit = (wanted: string) =>
      `version: 1\nplugins:\n  systemd:\n    units:\n      app.service:\n        unit_file: |\n          [Service]\n          ExecStart=/bin/true\n          [Install]\n          WantedBy=${wanted}\n`;
    const p = await problems(unit('mulit-user.target'), { root });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(
      /state\.yaml:6:\d+: plugins\.systemd\.units\["app\.service"\]\.unit_file: app\.service is WantedBy=mulit-user\.target \(line 4 of the unit file\).*\[systemd-install-target-exists\]/,
    );
    expect(await problems(unit('multi-user.target'), { root })).toEqual([]);
    expect(
      await problems(unit('app.target') + '      app.target: { unit_file: "[Unit]\\nDescription=app\\n" }\n', { root }),
    ).toEqual([]);
    mkdirSync(join(root, 'usr/lib/systemd/system'), { recursive: true });
    writeFileSync(join(root, 'usr/lib/systemd/system/vendor.target'), '[Unit]\n');
    expect(await problems(unit('vendor.target'), { root })).toEqual([]);
    expect(installTargets('[Install]\nWantedBy=a.target b.target\nRequiredBy=c.service\n').map((t) => t.name)).toEqual([
      'a.target',
      'b.target',
      'c.service',
    ]);
  });

  it('refuses one address on two interfaces, naming both', async () => {
    const text =
      'version: 1\nplugins:\n  net:\n    interfaces:\n      br1: { kind: bridge, addresses: { 10.9.0.1/24: {} } }\n      br2: { kind: bridge, addresses: { 10.9.0.1/16: {} } }\n';
    const p = await problems(text);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(
      /state\.yaml:6:\d+: .*address 10\.9\.0\.1 is given to interface br2 and already to interface br1 \[no-duplicate-addresses\]/,
    );
    expect(await problems(text.replace('10.9.0.1/16', '10.9.0.2/16'))).toEqual([]);
  });

  it('makes opd validate exit 65 on the NAT network without an ip, naming file:line', async () => {
    const f = doc('version: 1\nplugins:\n  libvirt:\n    networks:\n      natnet: { autostart: true }\n');
    const r = await opd(['validate', f]);
    expect(r.code).toBe(65);
    expect(r.stderr).toContain(`${f}:5:7: plugins.libvirt.networks.natnet:`);
    expect(r.stderr).toContain('no ip');
  });
});
