import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import plugin, { canonicalContainer, fromOpDbus } from '../../../../src/plugins/lxc/index.js';

describe('lxc input forms', () => {
  const ctx = () => {
    const c = {
      warnings: [] as string[],
      refusals: [] as string[],
      remap: () => {},
      warn: (p: string, m: string) => c.warnings.push(`${p}: ${m}`),
      refuse: (p: string, m: string) => c.refusals.push(`${p}: ${m}`),
    };
    return c;
  };

  it('maps an op-dbus containers[] entry to a container with a veth on its bridge, cores to a CPU quota (not a pin)', () => {
    const c = ctx();
    expect(
      fromOpDbus(
        {
          id: 100,
          veth: 'vi100',
          bridge: 'ovsbr0',
          running: true,
          properties: {
            memory: 512,
            cores: 2,
            onboot: true,
            hostname: 'web',
            ipv4_address: '10.0.0.100/24',
            network_type: 'bridge',
          },
        },
        '/plugins/lxc/containers/0',
        c,
      ),
    ).toEqual({
      id: '100',
      running: true,
      network: [{ type: 'veth', link: 'ovsbr0', name: 'vi100', ipv4: '10.0.0.100/24' }],
      memory: '512M',
      autostart: true,
      config: { 'lxc.uts.name': 'web', 'lxc.cgroup2.cpu.max': '200000 100000' },
    });
    expect(c.refusals).toEqual([]);
    expect(c.warnings).toEqual([]);
  });

  it('refuses op-dbus properties it cannot map, naming the property', () => {
    const c = ctx();
    const out = fromOpDbus({ id: '101', properties: { storage: 'local-btrfs' } }, '/plugins/lxc/containers/0', c);
    expect(out.properties).toBeUndefined();
    expect(c.refusals).toEqual([
      expect.stringMatching(
        /^\/plugins\/lxc\/containers\/0\/properties\/storage: op-dbus container property "storage" is not supported/,
      ),
    ]);
  });

  it('puts netmaker containers on mesh with a warning that enrollment is not done', () => {
    const c = ctx();
    const out = fromOpDbus(
      { id: '100', veth: 'vi100', bridge: 'vmbr0', properties: { network_type: 'netmaker' } },
      '/plugins/lxc/containers/0',
      c,
    );
    expect(out.network).toEqual([{ type: 'veth', link: 'mesh', name: 'vi100' }]);
    expect(c.warnings).toEqual([expect.stringContaining('/properties/network_type: network_type: netmaker')]);
  });

  it('creates from a Proxmox template archive when it exists on the host, and refuses it by name when it does not', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opd-pve-'));
    mkdirSync(join(dir, 'store', 'template', 'cache'), { recursive: true });
    writeFileSync(join(dir, 'store', 'template', 'cache', 'deb.tar.zst'), '');
    writeFileSync(
      join(dir, 'storage.cfg'),
      `dir: local\n\tpath /var/lib/vz\n\nbtrfs: local-btrfs\n\tpath ${join(dir, 'store')}\n\tcontent rootdir,vztmpl\n`,
    );
    process.env.OPD_PVE_STORAGE_CFG = join(dir, 'storage.cfg');
    try {
      const c = ctx();
      const ok = fromOpDbus(
        { id: '100', properties: { template: 'local-btrfs:vztmpl/deb.tar.zst' } },
        '/plugins/lxc/containers/0',
        c,
      );
      expect(ok).toMatchObject({
        template: 'archive',
        archive: join(dir, 'store', 'template', 'cache', 'deb.tar.zst'),
      });
      const missing = fromOpDbus(
        { id: '101', properties: { template: 'local-btrfs:vztmpl/other.tar.zst' } },
        '/plugins/lxc/containers/1',
        c,
      );
      expect(missing.template).toBeUndefined();
      expect(c.refusals).toEqual([
        expect.stringMatching(
          /containers\/1\/properties\/template: Proxmox template "local-btrfs:vztmpl\/other.tar.zst" is not on this host/,
        ),
      ]);
    } finally {
      delete process.env.OPD_PVE_STORAGE_CFG;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads debian-12 as the download template (bookworm) with a warning', () => {
    const c = ctx();
    expect(fromOpDbus({ id: '101', template: 'debian-12' }, '/plugins/lxc/containers/0', c)).toMatchObject({
      template: 'download',
      dist: 'debian',
      release: 'bookworm',
    });
    expect(c.warnings).toHaveLength(1);
  });

  it('turns the containers array into a map keyed by id', () => {
    const remaps: [string, string][] = [];
    const out = plugin.normalize!(
      { containers: [{ id: 'a', running: false }] },
      { remap: (to, from) => remaps.push([to, from]), warn: () => {}, refuse: () => {} },
    ) as { containers: Record<string, unknown> };
    expect(out.containers).toEqual({ a: { running: false } });
    expect(remaps).toContainEqual(['/plugins/lxc/containers/a', '/plugins/lxc/containers/0']);
  });

  it('spells memory, MACs, config scalars and an empty network one way', () => {
    expect(
      canonicalContainer({ memory: '65536K', network: [], config: { 'lxc.tty.max': 2, 'lxc.mount.entry': ['a'] } }),
    ).toEqual({
      memory: '64M',
      network: [{ type: 'empty' }],
      config: { 'lxc.tty.max': '2', 'lxc.mount.entry': 'a' },
    });
    expect(canonicalContainer({ network: [{ type: 'veth', hwaddr: '00:16:3E:AA:BB:CC' }] })).toEqual({
      network: [{ type: 'veth', hwaddr: '00:16:3e:aa:bb:cc' }],
    });
  });

  it('makes a container depend on the OVS bridge its veth sits on', () => {
    expect(
      plugin.edges!({
        containers: {
          c1: { network: [{ type: 'veth', link: 'ovsbr0' }, { type: 'veth', link: 'ovsbr0' }, { type: 'empty' }] },
        },
      }),
    ).toEqual([{ from: 'lxc/containers/c1', to: 'ovs/bridges/ovsbr0', kind: 'veth-link' }]);
  });
});
