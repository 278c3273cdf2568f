import { describe, expect, it } from 'vitest';
import plugin, { canonicalContainer, fromOpDbus, groupChanges } from '../../../../src/plugins/lxc/index.js';

describe('lxc input forms', () => {
  it('maps an op-dbus containers[] entry to a container with a veth on its bridge', () => {
    expect(fromOpDbus({ id: 100, veth: 'vi100', bridge: 'ovsbr0', running: true, properties: { memory: 512, cores: 2, onboot: true, hostname: 'web' } })).toEqual({
      id: '100',
      running: true,
      network: [{ type: 'veth', link: 'ovsbr0', name: 'vi100' }],
      memory: '512M',
      cpus: '0-1',
      autostart: true,
      config: { 'lxc.uts.name': 'web' },
    });
  });

  it('keeps op-dbus properties it cannot map so validation names them', () => {
    expect(fromOpDbus({ id: '101', properties: { storage: 'local-btrfs' } }).properties).toEqual({ storage: 'local-btrfs' });
  });

  it('turns the containers array into a map keyed by id', () => {
    const remaps: [string, string][] = [];
    const out = plugin.normalize!({ containers: [{ id: 'a', running: false }] }, { remap: (to, from) => remaps.push([to, from]) }) as { containers: Record<string, unknown> };
    expect(out.containers).toEqual({ a: { running: false } });
    expect(remaps).toContainEqual(['/plugins/lxc/containers/a', '/plugins/lxc/containers/0']);
  });

  it('spells memory, MACs, config scalars and an empty network one way', () => {
    expect(canonicalContainer({ memory: '65536K', network: [], config: { 'lxc.tty.max': 2, 'lxc.mount.entry': ['a'] } })).toEqual({
      memory: '64M',
      network: [{ type: 'empty' }],
      config: { 'lxc.tty.max': '2', 'lxc.mount.entry': 'a' },
    });
    expect(canonicalContainer({ network: [{ type: 'veth', hwaddr: '00:16:3E:AA:BB:CC' }] })).toEqual({ network: [{ type: 'veth', hwaddr: '00:16:3e:aa:bb:cc' }] });
  });

  it('makes a container depend on the OVS bridge its veth sits on', () => {
    expect(plugin.edges!({ containers: { c1: { network: [{ type: 'veth', link: 'ovsbr0' }, { type: 'veth', link: 'ovsbr0' }, { type: 'empty' }] } } })).toEqual([
      { from: 'lxc/containers/c1', to: 'ovs/bridges/ovsbr0', kind: 'veth-link' },
    ]);
  });
});

describe('lxc apply grouping', () => {
  const ch = (id: number, name: string, deps: number[] = []) => ({ id, deps, address: `lxc/containers/${name}`, resource: `lxc/containers/${name}`, plugin: 'lxc', action: 'update', summary: '', data: { step: 'configure', name } });
  it('runs different containers side by side and keeps one container’s steps together', () => {
    const g = groupChanges([ch(0, 'a'), ch(1, 'b'), ch(2, 'a')] as never);
    expect(g.map((x) => x.map((c) => (c as unknown as { id: number }).id))).toEqual([[0, 2], [1]]);
  });

  it('keeps containers linked by a dependency in one ordered group', () => {
    const g = groupChanges([ch(0, 'a'), ch(1, 'b', [0]), ch(2, 'c')] as never);
    expect(g.map((x) => x.map((c) => (c as unknown as { id: number }).id))).toEqual([[0, 1], [2]]);
  });

  it('runs everything in order when the plan’s dependency ids are missing', () => {
    expect(groupChanges([{ address: 'x', resource: 'x', plugin: 'lxc', action: 'create', summary: '' }, { address: 'y', resource: 'y', plugin: 'lxc', action: 'create', summary: '' }]).length).toBe(1);
  });
});
