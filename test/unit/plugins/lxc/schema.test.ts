import { describe, expect, it } from 'vitest';
import { validateDocument } from '../../../../src/core/validate.js';
import { OpdError } from '../../../../src/core/errors.js';

function problems(lxc: unknown): string[] {
  try {
    validateDocument({ version: 1, plugins: { lxc } });
    return [];
  } catch (err) {
    return (err as OpdError).problems.map((p) => `${p.pointer}: ${p.message}`);
  }
}

describe('lxc schema', () => {
  it('accepts a full container', () => {
    expect(
      problems({
        containers: {
          web: {
            template: 'busybox',
            memory: '64M',
            cpus: '0-1',
            network: [
              {
                type: 'veth',
                link: 'ovsbr0',
                name: 'vi100',
                guest_name: 'eth0',
                hwaddr: '00:16:3e:00:00:01',
                ipv4: '10.0.0.2/24',
                ipv4_gateway: 'auto',
                mtu: 1500,
              },
            ],
            config: {
              'lxc.tty.max': '2',
              'lxc.mount.entry': ['/a a none bind 0 0'],
              'lxc.hook.pre-start': '/bin/true',
            },
            running: true,
            autostart: true,
            depends_on: ['ovs/bridges/ovsbr0'],
          },
        },
      }),
    ).toEqual([]);
  });

  it('rejects names with shell characters or .. and over-long names', () => {
    expect(problems({ containers: { 'a;b': {} } }).length).toBeGreaterThan(0);
    expect(problems({ containers: { 'a..b': {} } }).length).toBeGreaterThan(0);
    expect(problems({ containers: { ['a'.repeat(65)]: {} } }).length).toBeGreaterThan(0);
  });

  it('rejects config keys that dedicated fields manage and values with newlines', () => {
    expect(problems({ containers: { c: { config: { 'lxc.net.0.link': 'br0' } } } }).length).toBeGreaterThan(0);
    expect(
      problems({ containers: { c: { config: { 'lxc.cgroup.memory.limit_in_bytes': '1G' } } } }).length,
    ).toBeGreaterThan(0);
    expect(problems({ containers: { c: { config: { 'lxc.tty.max': '1\nlxc.x = y' } } } }).length).toBeGreaterThan(0);
    expect(problems({ containers: { c: { config: { 'LXC.tty': '1' } } } }).length).toBeGreaterThan(0);
  });

  it('needs a rootfs for template none', () => {
    expect(problems({ containers: { c: { template: 'none' } } }).join('\n')).toContain('rootfs');
  });

  it('names op-dbus properties it could not map', () => {
    expect(problems({ containers: { c: { properties: { storage: 'x' } } } }).join('\n')).toContain(
      '/plugins/lxc/containers/c/properties',
    );
  });
});
