/**
 * The openflow plugin against a real ovs-vswitchd (netdev datapath, in a network namespace of
 * its own) with traffic: two network namespaces hang off an OVS bridge through veth pairs; a
 * drop flow opd installs really drops their ping, and removing it lets ping through again.
 * Flows opd did not create (other cookies) survive apply, state: absent and prune.
 */
import { expectOutput } from '../helpers/output-schema.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { doc, opd, tmp, uniq } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';
import { createNetns, type Netns } from '../helpers/netns.js';

let ovs: OvsSandbox;
let env: Record<string, string>;
let dir: string;
let vswitchdNs: string;
let a: Netns;
let b: Netns;
const id = uniq(4);
const BR = `ofbr${id}`;
const PA = `ofa${id}`; // bridge side of A's veth (the other end is eth0 inside namespace A)
const PB = `ofb${id}`;

const ofctl = async (args: string[]) =>
  (await execa('ovs-ofctl', ['-O', 'OpenFlow13', ...args], { env: { OVS_RUNDIR: ovs.dir } })).stdout;
/** opd's and everybody's flows, without counters */
const flows = async () =>
  (await ofctl(['--names', '--no-stats', 'dump-flows', BR]))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.includes('actions='))
    .map((l) => (l.startsWith('cookie=') ? l : `cookie=0x0, ${l}`)) // --no-stats leaves a zero cookie out
    .sort();
const ping = async () =>
  (await execa('ip', ['netns', 'exec', a.name, 'ping', '-c', '1', '-W', '2', '10.213.0.2'], { reject: false }))
    .exitCode;

const BRIDGE = `version: 1
plugins:
  ovs:
    bridges:
      ${BR}:
        datapath_type: netdev
        ports: { ${PA}: {}, ${PB}: {} }
`;

const DROP = `${BRIDGE}  openflow:
    bridges:
      ${BR}:
        flows:
          drop-ping: { priority: 200, match: { ip: true, nw_proto: 1, ip_dst: 10.213.0.2/32 }, actions: drop }
          keep-dhcp: { table: 0, priority: 150, match: { udp: "", udp_src: 68, udp_dst: 67 }, actions: [normal] }
`;

async function apply(text: string, ...args: string[]) {
  return opd(['apply', doc(text, dir), ...args], { env });
}

async function vethInto(ns: Netns, hostSide: string, addr: string) {
  const peer = `${hostSide}p`;
  await execa('ip', ['netns', 'exec', vswitchdNs, 'ip', 'link', 'add', hostSide, 'type', 'veth', 'peer', 'name', peer]);
  await execa('ip', ['netns', 'exec', vswitchdNs, 'ip', 'link', 'set', peer, 'netns', ns.name]);
  await execa('ip', ['netns', 'exec', vswitchdNs, 'ip', 'link', 'set', hostSide, 'up']);
  await ns.exec('ip', ['link', 'set', peer, 'name', 'eth0']);
  await ns.exec('ip', ['addr', 'add', addr, 'dev', 'eth0']);
  await ns.exec('ip', ['link', 'set', 'eth0', 'up']);
  await ns.exec('ip', ['link', 'set', 'lo', 'up']);
}

beforeAll(async () => {
  ovs = await startOvs({ vswitchd: true });
  vswitchdNs = readFileSync(join(ovs.dir, 'netns'), 'utf8').trim();
  dir = tmp();
  env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };
  a = await createNetns('plugins13-a');
  b = await createNetns('plugins13-b');
  await vethInto(a, PA, '10.213.0.1/24');
  await vethInto(b, PB, '10.213.0.2/24');
}, 120_000);

afterAll(async () => {
  await ovs?.stop();
  await a?.remove();
  await b?.remove();
});

describe('the openflow plugin against a real ovs-vswitchd, with traffic', () => {
  it('creates the bridge, then ping passes through its default NORMAL flow', async () => {
    const r = await apply(BRIDGE);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await ping()).toBe(0);
    expect(await flows()).toEqual(['cookie=0x0, priority=0 actions=NORMAL']);
  });

  it("installs a drop flow with opd's cookie that really drops the ping", async () => {
    // a flow somebody added by hand, with a cookie of their own
    await ofctl(['add-flow', BR, 'cookie=0x1234,priority=50,udp,tp_dst=9999,actions=drop']);
    const r = await apply(DROP);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /\+ openflow\/bridges\/\S+\/flows\/drop-ping: add table=0,priority=200,icmp,nw_dst=10\.213\.0\.2,actions=drop/,
    );
    expect(r.stdout).toMatch(/verification passed/);
    const f = await flows();
    expect(f.filter((l) => /^cookie=0x6f706400[0-9a-f]{8},/.test(l))).toHaveLength(2);
    expect(f).toContain('cookie=0x1234, priority=50,udp,tp_dst=9999 actions=drop');
    expect(f.some((l) => l.includes('priority=200,icmp,nw_dst=10.213.0.2 actions=drop'))).toBe(true);
    expect(await ping()).not.toBe(0);
  });

  it('reports zero changes on a second apply, and diff changes no flow', async () => {
    const before = await flows();
    const r = await apply(DROP);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('no changes: the host matches the document');
    const d = await opd(['diff', doc(DROP, dir)], { env });
    expect(d.code).toBe(0);
    const changed = await opd(['diff', doc(DROP.replace('priority: 200', 'priority: 210'), dir)], { env });
    expect(changed.code).toBe(2);
    expect(changed.stdout).toMatch(
      /~ openflow\/bridges\/\S+\/flows\/drop-ping: table=0,priority=200,.* → table=0,priority=210,/,
    );
    expect(await flows()).toEqual(before);
  });

  it('refuses to replace a flow opd did not create that has the same table, priority and match', async () => {
    await ofctl(['add-flow', BR, 'cookie=0x77,priority=250,udp,tp_dst=7777,actions=NORMAL']);
    const clash = DROP + '          clash: { priority: 250, match: { udp: true, tp_dst: 7777 }, actions: drop }\n';
    const r = await apply(clash);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/refused.*flows\/clash/);
    expect(r.stdout).toMatch(/cookie 0x77/);
    expect(await flows()).toContain('cookie=0x77, priority=250,udp,tp_dst=7777 actions=NORMAL');
    await ofctl(['del-flows', BR, 'cookie=0x77/-1']);
  });

  it('removes the drop flow (state: absent) and ping passes again; the hand-made flow stays', async () => {
    const r = await apply(DROP.replace(/drop-ping: \{.*\}/, 'drop-ping: { state: absent }'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/- openflow\/bridges\/\S+\/flows\/drop-ping: remove/);
    expect(await ping()).toBe(0);
    const f = await flows();
    expect(f.some((l) => l.includes('icmp'))).toBe(false);
    expect(f).toContain('cookie=0x1234, priority=50,udp,tp_dst=9999 actions=drop');
    expect(f).toContain('cookie=0x0, priority=0 actions=NORMAL');
  });

  it("prunes only opd's flows that the document does not name", async () => {
    const pruned = `${BRIDGE}  openflow:
    bridges:
      ${BR}:
        prune: { flows: true }
        flows:
          arp-normal: { priority: 120, match: { arp: true }, actions: NORMAL }
`;
    const r = await apply(pruned);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // keep-dhcp is not named any more: opd knows it as its own only by its cookie
    expect(r.stdout).toMatch(
      /- openflow\/bridges\/\S+\/flows\/cookie-0x6f706400[0-9a-f]{8}: remove table=0,priority=150,udp,tp_dst=67,tp_src=68,actions=NORMAL/,
    );
    const f = await flows();
    expect(f.filter((l) => l.startsWith('cookie=0x6f706400'))).toEqual([
      expect.stringContaining('priority=120,arp actions=NORMAL'),
    ]);
    expect(f).toContain('cookie=0x1234, priority=50,udp,tp_dst=9999 actions=drop');
    expect(f).toContain('cookie=0x0, priority=0 actions=NORMAL');
    expect(await ping()).toBe(0);
    expect((await apply(pruned)).stdout.trim()).toBe('no changes: the host matches the document');
  });

  it('removes every flow of its own on a bridge marked absent, and nothing else', async () => {
    const r = await apply(`${BRIDGE}  openflow:\n    bridges:\n      ${BR}: { state: absent }\n`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await flows()).toEqual([
      'cookie=0x0, priority=0 actions=NORMAL',
      'cookie=0x1234, priority=50,udp,tp_dst=9999 actions=drop',
    ]);
  });

  it("accepts op-dbus's OpenFlowConfig form (bridges[], match_fields, typed actions) and converges it", async () => {
    const json = JSON.stringify({
      version: 1,
      plugins: {
        openflow: {
          enable_security_flows: false,
          bridges: [
            {
              name: BR,
              flows: [
                {
                  table: 0,
                  priority: 200,
                  match_fields: { icmp: '', nw_dst: '10.213.0.2' },
                  actions: [{ type: 'drop' }],
                  cookie: 100,
                },
              ],
            },
          ],
        },
      },
    });
    const file = doc(json, dir, 'opdbus.json');
    const r = await opd(['apply', file], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/flows\/flow0: add table=0,priority=200,icmp,nw_dst=10\.213\.0\.2,actions=drop/);
    // op-dbus's cookie identifies the flow for op-dbus: a warning, and the flow carries opd's own
    expect(r.stderr).toMatch(/flows\[0\]\.cookie: cookie 100 is not used: opd sets each flow's cookie itself/);
    expect(await flows()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^cookie=0x6f706400[0-9a-f]{8}, priority=200,icmp,nw_dst=10\.213\.0\.2 /),
      ]),
    );
    expect(await ping()).not.toBe(0);
    expect((await opd(['apply', file], { env })).stdout.trim()).toBe('no changes: the host matches the document');
  });

  it("creates op-dbus's socket_ports as internal ports of the bridge (container id in external_ids), before the flows that match them, and sets its controller_endpoint as the bridge's controller", async () => {
    const br3 = `of3${id}`;
    const json = JSON.stringify({
      version: 1,
      plugins: {
        ovs: { bridges: { [br3]: { datapath_type: 'netdev' } } },
        openflow: {
          enable_security_flows: false,
          bridges: [
            {
              name: br3,
              flows: [
                {
                  table: 0,
                  priority: 200,
                  match_fields: { in_port: 'internal_100' },
                  actions: [
                    { type: 'load_register', register: 0, value: 100 },
                    { type: 'resubmit', table: 1 },
                  ],
                },
              ],
              socket_ports: [
                { name: 'internal_100', container_id: '100', ofport: null },
                { name: 'internal_101', container_id: '101' },
              ],
            },
          ],
          controller_endpoint: 'tcp:127.0.0.1:6653',
        },
      },
    });
    const file = doc(json, dir, 'socket-ports.json');
    const r = await opd(['apply', file], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const vsctl = async (args: string[]) => (await execa('ovs-vsctl', [`--db=${ovs.db}`, ...args])).stdout.trim();
    expect((await vsctl(['list-ports', br3])).split('\n')).toEqual(['internal_100', 'internal_101']);
    for (const [p, c] of [
      ['internal_100', '100'],
      ['internal_101', '101'],
    ]) {
      expect(await vsctl(['get', 'Interface', p, 'type'])).toBe('internal');
      expect(await vsctl(['get', 'Port', p, 'external_ids:container_id'])).toBe(`"${c}"`);
      expect(Number(await vsctl(['get', 'Interface', p, 'ofport']))).toBeGreaterThan(0);
    }
    // the flow of the same document matches the port by name: the port was there first
    const dump = await ofctl(['--names', '--no-stats', 'dump-flows', br3]);
    expect(dump).toMatch(/priority=200,in_port="internal_100" actions=load:0x64->NXM_NX_REG0\[\],resubmit\(,1\)/);
    // the controller: in the database, and ovs-vswitchd tries it (nothing listens there: its status says so)
    expect(await vsctl(['get-controller', br3])).toBe('tcp:127.0.0.1:6653');
    let status = '';
    for (let i = 0; i < 50 && !/state=/.test(status); i++) {
      status = await vsctl(['--columns=status', 'list', 'Controller']);
      if (!/state=/.test(status)) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toMatch(/state=(BACKOFF|CONNECTING)/);
    expect((await opd(['apply', file], { env })).stdout.trim()).toBe('no changes: the host matches the document');
    // opd's own form: a list, exact (the op-dbus endpoint is replaced), and applied again changes nothing
    const two = `version: 1
plugins:
  ovs:
    bridges:
      ${br3}:
        datapath_type: netdev
        controller: [tcp:127.0.0.1:6655, tcp:127.0.0.1:6654]
        ports: { internal_100: { type: internal }, internal_101: { type: internal } }
`;
    const c = await apply(two);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(c.stdout).toMatch(/controller \[tcp:127\.0\.0\.1:6653\] → \[tcp:127\.0\.0\.1:6654,tcp:127\.0\.0\.1:6655\]/);
    expect((await vsctl(['get-controller', br3])).split('\n').sort()).toEqual([
      'tcp:127.0.0.1:6654',
      'tcp:127.0.0.1:6655',
    ]);
    expect((await vsctl(['--columns=target', 'list', 'Controller'])).match(/target/g)).toHaveLength(2);
    expect((await apply(two)).stdout.trim()).toBe('no changes: the host matches the document');
    // a given ofport is OVS's to assign: a warning, the port is still created
    const warned = await opd(
      ['validate', doc(json.replace('"ofport":null', '"ofport":7'), dir, 'socket-ports-ofport.json')],
      { env },
    );
    expect(warned.code, warned.stderr).toBe(0);
    expect(warned.stderr).toMatch(/socket_ports\[0\]\.ofport: ofport is not set by opd: Open vSwitch assigns/);
  });

  it('creates a bridge and its flows in one run, the bridge first', async () => {
    const br2 = `of2${id}`;
    const text = `version: 1
plugins:
  openflow:
    bridges:
      ${br2}:
        flows:
          drop-all-ip: { priority: 10, match: { ip: true }, actions: drop }
  ovs:
    bridges:
      ${br2}: { datapath_type: netdev }
`;
    const r = await apply(text);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const bridgeAt = lines.findIndex((l) => l.includes(`ovs/bridges/${br2}: bridge`));
    const flowAt = lines.findIndex((l) => l.includes(`openflow/bridges/${br2}/flows/drop-all-ip`));
    expect(bridgeAt).toBeGreaterThanOrEqual(0);
    expect(flowAt).toBeGreaterThan(bridgeAt);
    expect(
      (await ofctl(['--no-stats', 'dump-flows', br2]))
        .split('\n')
        .filter((l) => l.includes('priority=10,ip actions=drop')),
    ).toHaveLength(1);
    const show = await opd(['show', '--plugin', 'openflow', '-o', 'json'], { env });
    expect(show.code, show.stderr).toBe(0);
    // opd cannot know the names of its flows from the switch: show names them by their cookie
    const shown = expectOutput<{
      document: { plugins: { openflow: { bridges: Record<string, { flows: Record<string, object> }> } } };
    }>('show', show.stdout).document;
    expect(Object.values(shown.plugins.openflow.bridges[br2].flows)).toEqual([
      { table: 0, priority: 10, match: { ip: true }, actions: [], idle_timeout: 0, hard_timeout: 0 },
    ]);
    expect(Object.keys(shown.plugins.openflow.bridges[br2].flows)[0]).toMatch(/^cookie-0x6f706400[0-9a-f]{8}$/);
    // and applying the document show printed (its JSON's `document`) changes nothing
    const again = await opd(['apply', doc(JSON.stringify(shown), dir, 'shown.json')], { env });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe('no changes: the host matches the document');
  });
});
