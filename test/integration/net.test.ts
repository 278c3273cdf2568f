import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { doc, opd, tmp } from '../helpers/opd.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { startOvs } from '../helpers/ovs.js';
import { readFileSync } from 'node:fs';
import { execa } from 'execa';

let ns: Netns;
let env: Record<string, string>;
let dir: string;

interface Link {
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  link?: string;
  addr_info: { local: string; prefixlen: number }[];
}

async function links(): Promise<Map<string, Link>> {
  const out = JSON.parse(await ns.exec('ip', ['-j', 'addr', 'show'])) as Link[];
  return new Map(out.map((l) => [l.ifname, l]));
}

const addrs = (l: Link | undefined) => (l?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).sort();

const FIRST = `
version: 1
plugins:
  net:
    interfaces:
      lo: { up: true }
      fcbr0:
        kind: bridge
        up: true
        mtu: 1400
        addresses: ["10.0.0.1/24", "fd00:0::1/64"]
        routes:
          default: { via: 10.0.0.254 }
          "fd01::/64": { via: "fd00::fe" }
      vm0a: { kind: veth, peer: vm0b, master: fcbr0, up: true }
      vm0b: { kind: veth, peer: vm0a, up: true, addresses: ["10.0.0.50/24"] }
`;

const SECOND = `
version: 1
plugins:
  net:
    interfaces:
      fcbr0:
        kind: bridge
        mtu: 1500
        addresses: { "10.0.0.1/24": {}, "fd00::1/64": { state: absent }, "10.0.0.2/24": {} }
        routes:
          default: { via: 10.0.0.253 }
          "fd01::/64": { state: absent }
      vm0b: { kind: veth, peer: vm0a, master: fcbr0 }
`;

describe('net plugin (iproute2 in a network namespace of the test)', () => {
  beforeAll(async () => {
    ns = await createNetns('opdnet');
    dir = tmp('opd-net-');
    env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_NETNS: ns.name };
  });
  afterAll(async () => {
    await ns?.remove();
  });

  it('creates a bridge, a veth pair, IPv4/IPv6 addresses and routes', async () => {
    const r = await opd(['apply', doc(FIRST, dir, 'first.yaml')], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const l = await links();
    expect(l.get('fcbr0')?.mtu).toBe(1400);
    expect(l.get('fcbr0')?.flags).toContain('UP');
    expect(addrs(l.get('fcbr0'))).toEqual(expect.arrayContaining(['10.0.0.1/24', 'fd00::1/64']));
    expect(l.get('vm0a')?.master).toBe('fcbr0');
    expect(l.get('vm0a')?.link).toBe('vm0b');
    expect(addrs(l.get('vm0b'))).toContain('10.0.0.50/24');
    expect(await ns.exec('ip', ['-4', 'route', 'show', 'default'])).toContain('default via 10.0.0.254 dev fcbr0');
    expect(await ns.exec('ip', ['-6', 'route', 'show', 'fd01::/64'])).toContain('via fd00::fe dev fcbr0');
  });

  it('reports no changes on a second apply, and diff exits 0', async () => {
    const r = await opd(['apply', join(dir, 'first.yaml')], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no changes');
    expect((await opd(['diff', join(dir, 'first.yaml')], { env })).code).toBe(0);
  });

  it('leaves the host byte-identical on diff with pending changes', async () => {
    const p = doc(SECOND, dir, 'second.yaml');
    const before = await ns.ipDump();
    const r = await opd(['diff', p], { env });
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('net/interfaces/fcbr0/routes/default');
    expect(r.stdout).toContain('10.0.0.254 → 10.0.0.253');
    expect(await ns.ipDump()).toBe(before);
  });

  it('changes the gateway and MTU, removes what is marked absent, and keeps a route it does not declare', async () => {
    await ns.exec('ip', ['route', 'add', '10.77.0.0/16', 'via', '10.0.0.9']);
    await ns.exec('ip', ['addr', 'add', '10.0.0.99/24', 'dev', 'fcbr0']);
    const r = await opd(['apply', join(dir, 'second.yaml')], { env });
    expect(r.code).toBe(0);
    const l = await links();
    expect(l.get('fcbr0')?.mtu).toBe(1500);
    expect(addrs(l.get('fcbr0'))).toEqual(expect.arrayContaining(['10.0.0.1/24', '10.0.0.2/24', '10.0.0.99/24']));
    expect(addrs(l.get('fcbr0'))).not.toContain('fd00::1/64');
    expect(l.get('vm0b')?.master).toBe('fcbr0');
    const routes = await ns.exec('ip', ['-4', 'route', 'show']);
    expect(routes).toContain('default via 10.0.0.253 dev fcbr0');
    expect(routes).not.toContain('10.0.0.254');
    expect(routes).toContain('10.77.0.0/16 via 10.0.0.9 dev fcbr0');
    expect(await ns.exec('ip', ['-6', 'route', 'show', 'fd01::/64'])).toBe('');
    expect((await opd(['apply', join(dir, 'second.yaml')], { env })).stdout).toContain('no changes');
  });

  it('never deletes a default route the document does not declare', async () => {
    await ns.exec('ip', ['route', 'add', 'default', 'via', '10.0.0.9', 'metric', '50']);
    const p = doc(
      `
version: 1
plugins:
  net:
    interfaces:
      fcbr0: { routes: { "10.88.0.0/16": { via: 10.0.0.9 } } }
`,
      dir,
      'other-route.yaml',
    );
    expect((await opd(['apply', p], { env })).code).toBe(0);
    const routes = await ns.exec('ip', ['-4', 'route', 'show']);
    expect(routes).toContain('default via 10.0.0.9 dev fcbr0 metric 50');
    expect(routes).toContain('default via 10.0.0.253 dev fcbr0');
    expect(routes).toContain('10.88.0.0/16 via 10.0.0.9 dev fcbr0');
  });

  it('maps the op-dbus interfaces array with ipv4 address, prefix and gateway', async () => {
    const p = doc(
      `
version: 1
plugins:
  net:
    interfaces:
      - name: mesh0
        type: bridge
        ipv4: { enabled: true, dhcp: false, address: [{ ip: 10.5.0.1, prefix: 24 }], gateway: 10.5.0.254 }
`,
      dir,
      'opdbus.yaml',
    );
    // in a namespace of its own: the first one has a default route already
    const ns2 = await createNetns('opdnet2');
    try {
      const env2 = { ...env, OPD_NETNS: ns2.name };
      const r = await opd(['apply', p], { env: env2 });
      expect(r.code).toBe(0);
      const l = new Map((JSON.parse(await ns2.exec('ip', ['-j', 'addr', 'show'])) as Link[]).map((x) => [x.ifname, x]));
      expect(addrs(l.get('mesh0'))).toContain('10.5.0.1/24');
      expect(await ns2.exec('ip', ['-4', 'route', 'show', 'default'])).toContain('default via 10.5.0.254 dev mesh0');
      const same = doc(
        `
version: 1
plugins:
  net:
    interfaces:
      mesh0: { kind: bridge, up: true, addresses: [10.5.0.1/24], routes: { default: { via: 10.5.0.254 } } }
`,
        dir,
        'opdbus-as-opd.yaml',
      );
      expect((await opd(['apply', same], { env: env2 })).stdout).toContain('no changes');
    } finally {
      await ns2.remove();
    }
  });

  it('does not take over a default route another interface holds', async () => {
    const p = doc(
      `
version: 1
plugins:
  net:
    interfaces:
      - name: mesh0
        type: bridge
        ipv4: { enabled: true, dhcp: false, address: [{ ip: 10.5.0.1, prefix: 24 }], gateway: 10.5.0.254 }
`,
      dir,
      'opdbus.yaml',
    );
    const r = await opd(['apply', p], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('opd never deletes a route it did not declare');
    expect(await ns.exec('ip', ['-4', 'route', 'show', 'default'])).toContain('default via 10.0.0.253 dev fcbr0');
  });

  it('deletes links marked absent (a veth pair goes with either end)', async () => {
    const p = doc(
      `
version: 1
plugins:
  net:
    interfaces:
      vm0a: { state: absent }
      vm0b: { state: absent }
      mesh0: { state: absent }
`,
      dir,
      'absent.yaml',
    );
    const r = await opd(['apply', p], { env });
    expect(r.code).toBe(0);
    const l = await links();
    expect(l.has('vm0a') || l.has('vm0b') || l.has('mesh0')).toBe(false);
    expect(l.has('fcbr0')).toBe(true);
    expect((await opd(['apply', p], { env })).stdout).toContain('no changes');
  });

  it('fails clearly for a link type this kernel lacks', async () => {
    const p = doc(
      `
version: 1
plugins:
  net:
    interfaces:
      dm0: { kind: dummy }
`,
      dir,
      'dummy.yaml',
    );
    const r = await opd(['apply', p], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/no support for this link type/);
  });

  it('refuses a DHCP request and hostile names with exit 65, touching nothing', async () => {
    const before = await ns.ipDump();
    for (const text of [
      'version: 1\nplugins:\n  net:\n    interfaces:\n      "br0;rm -rf /": { kind: bridge }\n',
      'version: 1\nplugins:\n  net:\n    interfaces:\n      br0: { kind: bridge, addresses: ["10.0.0.1/24; reboot"] }\n',
      'version: 1\nplugins:\n  net:\n    interfaces:\n      - { name: e0, ipv4: { enabled: true, dhcp: true } }\n',
    ]) {
      const r = await opd(['apply', doc(text, dir, 'hostile.yaml')], { env });
      expect(r.code).toBe(65);
    }
    expect(await ns.ipDump()).toBe(before);
  });

  it('addresses an OVS internal interface the ovs plugin creates in the same run, and refuses to delete it', async () => {
    const ovs = await startOvs({ vswitchd: true });
    try {
      const vns = readFileSync(join(ovs.dir, 'netns'), 'utf8').trim();
      const env3 = { ...env, OPD_NETNS: vns, OPD_OVS_DB: ovs.db };
      const p = doc(
        `
version: 1
plugins:
  ovs:
    bridges:
      obr0: { datapath_type: netdev, ports: {} }
  net:
    interfaces:
      obr0: { kind: ovs, up: true, addresses: [10.6.0.1/24], routes: { 10.66.0.0/16: { via: 10.6.0.254 } } }
`,
        dir,
        'ovs.yaml',
      );
      const r = await opd(['apply', p], { env: env3 });
      expect(r.code).toBe(0);
      expect(r.stdout.indexOf('ovs/bridges/obr0')).toBeLessThan(r.stdout.indexOf('net/interfaces/obr0'));
      expect((await execa('ip', ['-n', vns, '-br', 'addr', 'show', 'obr0'])).stdout).toContain('10.6.0.1/24');
      expect((await opd(['apply', p], { env: env3 })).stdout).toContain('no changes');
      const gone = doc(
        'version: 1\nplugins:\n  net:\n    interfaces:\n      obr0: { state: absent }\n',
        dir,
        'ovs-absent.yaml',
      );
      const d = await opd(['apply', gone], { env: env3 });
      expect(d.code).toBe(1);
      expect(d.stdout).toContain('opd deletes only links of the kinds it creates');
      expect((await execa('ip', ['-n', vns, '-br', 'link', 'show', 'obr0'])).stdout).toContain('obr0');
    } finally {
      await ovs.stop();
    }
  });

  it('keeps an intact audit trail', async () => {
    const r = await opd(['audit', 'verify'], { env });
    expect(r.code).toBe(0);
  });
});
