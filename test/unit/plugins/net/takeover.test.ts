import { describe, expect, it } from 'vitest';
import { planInterface, takeOverCmds } from '../../../../src/plugins/net/plan.js';
import type { HostNet } from '../../../../src/plugins/net/host.js';
import type { ResourceDiff } from '../../../../src/core/plugin.js';

const host: HostNet = {
  links: new Map([
    [
      'eth0',
      {
        ifname: 'eth0',
        addr_info: [
          { family: 'inet', local: '192.168.1.10', prefixlen: 24, scope: 'global' },
          { family: 'inet', local: '192.168.1.11', prefixlen: 24, scope: 'global' },
          { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
        ],
      },
    ],
    ['ovsbr0', { ifname: 'ovsbr0', addr_info: [] }],
  ]),
  routes: [
    { family: 4, dst: 'default', r: { dst: 'default', gateway: '192.168.1.1', dev: 'eth0', protocol: 'static' } },
    { family: 4, dst: '192.168.1.0/24', r: { dst: '192.168.1.0/24', dev: 'eth0', protocol: 'kernel' } },
    { family: 4, dst: '10.20.0.0/16', r: { dst: '10.20.0.0/16', gateway: '192.168.1.254', dev: 'eth0', metric: 5 } },
  ],
};

describe('net take-over (a bridge takes over its uplink port)', () => {
  it('moves gateway routes and global addresses, routes off first, and leaves to the document what it adds itself', () => {
    const cmds = takeOverCmds(host, 'ovsbr0', {
      from: 'eth0',
      keepAddrs: ['192.168.1.10/24'],
      keepRoutes: ['default'],
    });
    expect(cmds.map((c) => c.join(' '))).toEqual([
      'route del 0.0.0.0/0 via 192.168.1.1 dev eth0 metric 0',
      'route del 10.20.0.0/16 via 192.168.1.254 dev eth0 metric 5',
      'addr del 192.168.1.10/24 dev eth0',
      'addr del 192.168.1.11/24 dev eth0',
      'addr add 192.168.1.11/24 dev ovsbr0',
      'route add 10.20.0.0/16 via 192.168.1.254 dev ovsbr0 metric 5',
    ]);
  });

  it('does nothing for a link that is gone', () => {
    expect(takeOverCmds(host, 'ovsbr0', { from: 'eth9', keepAddrs: [], keepRoutes: [] })).toEqual([]);
  });

  it('plans the move before the bridge gets its own addresses and routes', () => {
    const diff: ResourceDiff = {
      plugin: 'net',
      collection: 'interfaces',
      name: 'ovsbr0',
      address: 'net/interfaces/ovsbr0',
      action: 'update',
      current: { kind: 'ovs', up: true, addresses: {}, routes: {}, take_over: [] },
      desired: {
        kind: 'ovs',
        up: true,
        addresses: { '192.168.1.10/24': {} },
        routes: { default: { via: '192.168.1.1' } },
        take_over: ['eth0'],
      },
      ops: [],
      allowDestroy: false,
    };
    const changes = planInterface(diff);
    const move = changes.find((c) => c.action === 'move')!;
    expect(move.address).toBe('net/interfaces/ovsbr0/take_over/eth0');
    for (const c of changes.filter((c) => c.action === 'create')) expect(c.after).toContain(move.address);
  });
});
