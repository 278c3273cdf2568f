/**
 * examples/opdbus-full-mode.yaml exactly as shipped, on a booted Debian 12 machine
 * (test/machine/harness.ts): `address`, `gateway` and `uplink` (the machine's NIC, enp1s0) from
 * the machine's vars file. Debian's Open vSwitch (openvswitch-switch: ovsdb-server and
 * ovs-vswitchd) is installed and started by the same apply, the bridges and the containers follow
 * in the run's second stage; the bridges use the userspace datapath, which this host allows
 * without the openvswitch kernel module. ovsbr0 takes over the uplink's address from the host's
 * native configuration (ifupdown), and does so again at every boot (opd-boot.service, with the
 * parameters from the vars file). lxcfs does not start in a container (its unit's
 * ConditionVirtualization=!container): the document leaves it out there (`when: { container:
 * false }`), which the test asserts from the machine's facts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, NET, runsOf, startedByOpd, Timings } from './harness.js';
import {
  STATE,
  apply,
  enableBoot,
  expectBootRun,
  expectNoChanges,
  expectNoDiff,
  expectOk,
  expectShipped,
  factsOf,
  failedUnits,
  machineFor,
} from './steps.js';

const EXAMPLE = 'opdbus-full-mode.yaml';
const t = new Timings('opdbus-full-mode');
const CONTAINERS = { '100': 'gateway', '101': 'warp', '102': 'xray-client' };
let m: Machine;

type IpAddr = { ifname: string; addr_info: { family: string; local: string; prefixlen: number; scope: string }[] };
async function globalAddrs(dev: string): Promise<string[]> {
  const all = JSON.parse((await m.exec(['ip', '-j', 'addr', 'show'])).stdout) as IpAddr[];
  return (all.find((a) => a.ifname === dev)?.addr_info ?? [])
    .filter((a) => a.scope === 'global')
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort();
}

/** What opd-boot brings back at every boot, with the vars file's parameters. */
async function expectNetwork(): Promise<void> {
  expect(await globalAddrs('ovsbr0')).toEqual([`${NET.address}/${NET.prefix}`]);
  expect(await globalAddrs('mesh')).toEqual(['10.0.0.1/24']);
  expect(await globalAddrs(NET.nic), 'the native configuration put it on the uplink; the bridge took it over').toEqual(
    [],
  );
  const routes = JSON.parse((await m.exec(['ip', '-j', 'route', 'show', 'default'])).stdout) as {
    gateway?: string;
    dev: string;
  }[];
  expect(routes.map((r) => `${r.gateway} ${r.dev}`)).toEqual([`${NET.gateway} ovsbr0`]);
  const nft = (await m.exec(['nft', 'list', 'table', 'inet', 'opdbus'])).stdout;
  expect(nft).toContain('policy drop');
  for (const r of ['iifname "ovsbr0" accept', 'iifname "mesh" accept', 'tcp dport 22 accept', 'tcp dport 9573 accept'])
    expect(nft).toContain(r);
  // the host answers on its address through the bridge (another host on the uplink's network)
  const ping = await m.upstreamExec(['ping', '-c', '1', '-W', '3', NET.address]);
  expect(ping.code, ping.stdout + ping.stderr).toBe(0);
}

describe(`examples/${EXAMPLE} on a booted Debian 12 machine`, () => {
  beforeAll(async () => {
    m = await machineFor(
      'opdbus',
      EXAMPLE,
      { vars: { address: NET.address, gateway: NET.gateway, uplink: NET.nic } },
      t,
    );
  });
  afterAll(async () => {
    await m?.destroy();
  });

  it('applies the shipped document with one opd apply (exit 0), and a second apply has no changes', async () => {
    expect(await globalAddrs(NET.nic), 'the native configuration gave the uplink its address').toEqual([
      `${NET.address}/${NET.prefix}`,
    ]);
    const a = await apply(m, t);
    expectOk(a);
    expect(a.stdout).toMatch(/^ok\s+\+ ovs\/bridges\/ovsbr0: bridge/m);
    const q = await m.exec([
      'dpkg-query',
      '-W',
      '-f=${Status}\\n',
      'openvswitch-switch',
      'lxc',
      'lxcfs',
      'busybox-static',
    ]);
    expect(q.stdout.trim().split('\n')).toEqual(Array(4).fill('install ok installed'));
    expect(a.stdout).toMatch(/^ok\s+~ lxc\/containers\/100\/running: start container/m);
    expectNoChanges(await apply(m, t, 'second apply'));
  });

  it('applied exactly the shipped file (the audit trail records its sha256), leaving lxcfs out in a container (facts)', async () => {
    expectShipped(m, EXAMPLE);
    const f = await factsOf(m);
    expect(f.container).toBe(true);
    expect(runsOf(m.audit(), STATE)[0].excluded).toEqual(['systemd/units/lxcfs.service']);
    expect(await m.systemctl(['is-active', 'lxcfs.service'])).not.toBe('active');
  });

  it("runs Debian's Open vSwitch, started by opd, with the bridges on the datapath this host allows", async () => {
    for (const u of ['openvswitch-switch.service', 'ovsdb-server.service', 'ovs-vswitchd.service'])
      expect(await m.systemctl(['is-active', u]), u).toBe('active');
    expect(startedByOpd(m.audit(), 'openvswitch-switch.service')).toBe(true);
    expect((await m.unit('ovs-vswitchd.service', ['FragmentPath'])).FragmentPath).toBe(
      '/lib/systemd/system/ovs-vswitchd.service',
    );
    const types = (await m.exec(['ovs-vsctl', 'get', 'Open_vSwitch', '.', 'datapath_types'])).stdout;
    expect(types).toContain('netdev');
    for (const b of ['ovsbr0', 'mesh'])
      expect((await m.exec(['ovs-vsctl', 'get', 'Bridge', b, 'datapath_type'])).stdout.trim()).toBe('netdev');
    const errors = (await m.exec(['ovs-vsctl', '--format=json', '--columns=name,error', 'list', 'Interface'])).stdout;
    expect(JSON.parse(errors).data.filter((r: unknown[]) => typeof r[1] === 'string')).toEqual([]);
    expect((await m.exec(['ovs-vsctl', 'list-ports', 'ovsbr0'])).stdout.trim()).toBe(NET.nic);
  });

  it('moved the address and gateway of the vars file onto ovsbr0 and set up the firewall and the hostname', async () => {
    await expectNetwork();
    expect((await m.exec(['hostname'])).stdout.trim()).toBe('ghostbridge');
    expect(m.readFile('/etc/hostname')).toBe('ghostbridge\n');
  });

  it('runs the three containers with their hostnames, their veths on mesh', async () => {
    const ls = (await m.exec(['lxc-ls', '-f', '-F', 'name,state,autostart'])).stdout;
    for (const c of Object.keys(CONTAINERS)) expect(ls).toMatch(new RegExp(`^${c}\\s+RUNNING\\s+1`, 'm'));
    const ports = (await m.exec(['ovs-vsctl', 'list-ports', 'mesh'])).stdout.split('\n');
    expect(ports).toEqual(expect.arrayContaining(['vi100', 'vi101', 'vi102']));
    for (const [c, name] of Object.entries(CONTAINERS))
      expect((await m.exec(['lxc-attach', '-n', c, '--', 'hostname'])).stdout.trim()).toBe(name);
  });

  it('comes back after a reboot: bridges, addresses, routes and firewall before network.target, the containers, and opd diff finds nothing to do', async () => {
    await enableBoot(m);
    const state = await t.time('reboot', () => m.reboot());
    expect(state, `the rebooted machine runs with nothing failed${await failedUnits(m)}`).toBe('running');
    await expectBootRun(m, EXAMPLE);
    await expectNetwork();
    const ls = (await m.exec(['lxc-ls', '-f', '-F', 'name,state'])).stdout;
    for (const c of Object.keys(CONTAINERS)) expect(ls).toMatch(new RegExp(`^${c}\\s+RUNNING`, 'm'));
    await expectNoDiff(m);
  });

  it('is undone by the absent document', async () => {
    const a = await t.time('absent', () => m.opd(['apply', '/opt/opd/examples/opdbus-full-mode-absent.yaml']));
    expectOk(a);
    expect((await m.exec(['lxc-ls', '-1'])).stdout.trim()).toBe('');
    expect((await m.exec(['ovs-vsctl', 'list-br'])).stdout.trim()).toBe('');
    expect((await m.exec(['nft', 'list', 'table', 'inet', 'opdbus'])).code).not.toBe(0);
  });
});
