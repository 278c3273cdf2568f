import { describe, expect, it } from 'vitest';
import {
  canonicalMemory,
  createConfig,
  networkFromConfig,
  parseConfig,
  rewriteConfig,
  specFromConfig,
} from '../../../../src/plugins/lxc/config.js';

const BUSYBOX = `# Template used to create this container: /usr/share/lxc/templates/lxc-busybox
# Parameters passed to the template:
lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.flags = up
lxc.net.0.veth.pair = vi100
lxc.apparmor.profile = unconfined
lxc.rootfs.path = dir:/var/lib/lxc/c1/rootfs
lxc.uts.name = "c1"
lxc.tty.max = 5
lxc.mount.entry = /lib lib none ro,bind 0 0
lxc.mount.entry = /usr/lib usr/lib none ro,bind 0 0
lxc.cgroup.memory.limit_in_bytes = 67108864
lxc.start.auto = 1
`;

describe('lxc config files', () => {
  it('parses keys, strips quotes and keeps comments as raw lines', () => {
    const lines = parseConfig(BUSYBOX);
    expect(lines[0].key).toBeUndefined();
    expect(lines.find((l) => l.key === 'lxc.uts.name')?.value).toBe('c1');
  });

  it('reads template, memory, network, autostart and raw keys into the section shape', () => {
    const f = specFromConfig(
      BUSYBOX,
      { template: 'busybox', rootfs_owned: true, rootfs: '/var/lib/lxc/c1/rootfs' },
      '/var/lib/lxc/c1',
    );
    expect(f.spec).toEqual({
      template: 'busybox',
      rootfs: '/var/lib/lxc/c1/rootfs',
      memory: '64M',
      network: [{ type: 'veth', link: 'br0', name: 'vi100' }],
      autostart: true,
      config: {
        'lxc.apparmor.profile': 'unconfined',
        'lxc.mount.entry': ['/lib lib none ro,bind 0 0', '/usr/lib usr/lib none ro,bind 0 0'],
        'lxc.tty.max': '5',
        'lxc.uts.name': 'c1',
      },
    });
    expect(f.rootfsOwned).toBe(true);
  });

  it('does not own a rootfs without opd’s marker or outside the container directory', () => {
    expect(specFromConfig(BUSYBOX, undefined, '/var/lib/lxc/c1').rootfsOwned).toBe(false);
    const moved = BUSYBOX.replace('dir:/var/lib/lxc/c1/rootfs', 'dir:/srv/rootfs');
    expect(
      specFromConfig(
        moved,
        { template: 'busybox', rootfs_owned: true, rootfs: '/var/lib/lxc/c1/rootfs' },
        '/var/lib/lxc/c1',
      ).rootfsOwned,
    ).toBe(false);
  });

  it('reports a config without lxc.net keys as sharing the host network (type none)', () => {
    expect(networkFromConfig(parseConfig('lxc.tty.max = 1\n'))).toEqual([{ type: 'none' }]);
  });

  it('reads the download template parameters from the comments lxc-create writes', () => {
    const text =
      '# Template used to create this container: /usr/share/lxc/templates/lxc-download\n# Parameters passed to the template: --dist debian --release bookworm --arch amd64\nlxc.net.0.type = empty\n';
    expect(specFromConfig(text, undefined, '/x/c').spec).toMatchObject({
      template: 'download',
      dist: 'debian',
      release: 'bookworm',
      arch: 'amd64',
    });
  });

  it('spells memory in the largest exact unit', () => {
    expect(canonicalMemory('67108864')).toBe('64M');
    expect(canonicalMemory('1024M')).toBe('1G');
    expect(canonicalMemory('1536K')).toBe('1536K');
    expect(canonicalMemory('1000')).toBe('1000');
  });

  it('rewrites only the keys it manages and keeps everything else in place', () => {
    const out = rewriteConfig(BUSYBOX, { memory: '128M', autostart: false, config: { 'lxc.tty.max': '2' } }, false);
    expect(out).toContain('lxc.cgroup.memory.limit_in_bytes = 128M');
    expect(out).not.toContain('67108864');
    expect(out).toContain('lxc.start.auto = 0');
    expect(out).toContain('lxc.tty.max = 2');
    expect(out).toContain('# Template used to create this container');
    expect(out).toContain('lxc.mount.entry = /usr/lib usr/lib none ro,bind 0 0');
    expect(out.indexOf('lxc.tty.max = 2')).toBe(
      BUSYBOX.replace('lxc.tty.max = 5', 'lxc.tty.max = 2').indexOf('lxc.tty.max = 2'),
    );
  });

  it('writes cgroup2 keys on a cgroup2 host and drops the v1 spelling', () => {
    const out = rewriteConfig(BUSYBOX, { memory: '64M', cpus: '0-1' }, true);
    expect(out).toContain('lxc.cgroup2.memory.max = 64M');
    expect(out).toContain('lxc.cgroup2.cpuset.cpus = 0-1');
    expect(out).not.toContain('lxc.cgroup.memory.limit_in_bytes');
  });

  it('replaces the whole network block where it was', () => {
    const out = rewriteConfig(
      BUSYBOX,
      {
        network: [
          { type: 'veth', link: 'ovsbr0', guest_name: 'eth0', hwaddr: '00:16:3e:00:00:01', ipv4: '10.0.0.2/24' },
          { type: 'empty' },
        ],
      },
      false,
    );
    const lines = out.split('\n');
    expect(lines.slice(2, 9)).toEqual([
      'lxc.net.0.type = veth',
      'lxc.net.0.link = ovsbr0',
      'lxc.net.0.flags = up',
      'lxc.net.0.name = eth0',
      'lxc.net.0.hwaddr = 00:16:3e:00:00:01',
      'lxc.net.0.ipv4.address = 10.0.0.2/24',
      'lxc.net.1.type = empty',
    ]);
    expect(out).not.toContain('vi100');
    expect(networkFromConfig(parseConfig(out))).toEqual([
      { type: 'veth', link: 'ovsbr0', guest_name: 'eth0', hwaddr: '00:16:3e:00:00:01', ipv4: '10.0.0.2/24' },
      { type: 'empty' },
    ]);
  });

  it('always makes created containers unconfined and never network-less', () => {
    const c = createConfig({ template: 'busybox' });
    expect(c).toContain('lxc.apparmor.profile = unconfined');
    expect(c).toContain('lxc.net.0.type = empty');
  });
});
