/**
 * examples/opdbus-full-mode.yaml (and its op-dbus JSON twin) end to end, on a private Open vSwitch
 * (ovsdb-server + ovs-vswitchd, netdev datapath, in a network namespace of its own) and a private
 * lxcpath (test/helpers/lxc.ts): the bridges ovsbr0 (uplink eth0, a veth the test makes in that
 * namespace to stand for the NIC) and mesh with their addresses, and the containers gateway,
 * warp and xray-client running with their veths on mesh; then the absent document.
 * openvswitch-switch.service is a host daemon (the Debian OVS would need the kernel module this
 * machine lacks, and the tests run private ones): see test/helpers/examples.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import { OPD, tmp, type OpdRun } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { startLxc, type LxcSandbox } from '../helpers/lxc.js';
import {
  EXAMPLES,
  expectSecondApplyNoChanges,
  opdIn,
  pending,
  sectionsOf,
  systemctl,
  withoutStarting,
} from '../helpers/examples.js';

const NAME = 'opdbus-full-mode.yaml';
const ORIGINAL = join(EXAMPLES, NAME);
const JSON_FORM = join(EXAMPLES, 'opdbus-full-mode.json');
const ABSENT = join(EXAMPLES, 'opdbus-full-mode-absent.yaml');
const HOST_DAEMONS = ['openvswitch-switch.service'];
// Debian's lxcfs.service has ConditionVirtualization=!container, and the namespaced systemd of
// this machine kind counts as a container: the test's own drop-in (written by the test: under
// --root opd writes unit files inside the root, where this systemd does not look) clears that
// condition so that opd really starts lxcfs
const LXCFS_DROPIN = '/etc/systemd/system/lxcfs.service.d/50-opd-e2e.conf';
const DOC = withoutStarting(NAME, HOST_DAEMONS);
const JSON_DOC = withoutStarting('opdbus-full-mode.json', HOST_DAEMONS);

let sb: LxcSandbox;
// packages through the default backend (auto); the guide's addressing as the document's parameters;
// /etc/hostname under a sandbox root, the running hostname in a UTS namespace of the test's own.
// The root is the LXC sandbox's directory and the lxcpath /lxc in it, which is the sandbox's
// lxcpath (--root puts the lxcpath inside the root too)
let root = '';
const UTS = join(tmp('opd-e2e-opdbus-uts-'), 'uts');
const extra: Record<string, string> = {
  OPD_VAR_address: '192.168.1.10',
  OPD_VAR_gateway: '192.168.1.1',
  OPD_LXC_PATH: '/lxc',
};
const run = async (args: string[]): Promise<OpdRun> =>
  sb.sh('nsenter', [`--uts=${UTS}`, '--', 'node', OPD, ...args], { env: extra });
const hostHostname = hostname();

describe('examples/opdbus-full-mode.yaml and .json', () => {
  beforeAll(async () => {
    await ensureSystemd();
    writeFileSync(UTS, '');
    expect((await execa('unshare', [`--uts=${UTS}`, 'true'], { reject: false })).exitCode).toBe(0);
    sb = await startLxc();
    root = sb.dir;
    extra.OPD_ROOT = root;
    expect(join(root, extra.OPD_LXC_PATH)).toBe(sb.lxcPath);
    mkdirSync(dirname(LXCFS_DROPIN), { recursive: true });
    writeFileSync(LXCFS_DROPIN, '[Unit]\nConditionVirtualization=\n');
    await execa('systemctl', ['daemon-reload'], { env: { SYSTEMCTL_FORCE_BUS: '1' } });
    // the physical uplink eth0 of the guide, in the sandbox's namespace
    expect((await sb.sh('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer'])).code).toBe(0);
    await sb.sh('ip', ['link', 'set', 'eth0-peer', 'up']);
    await sb.sh('ip', ['link', 'set', 'eth0', 'up']);
  });
  afterAll(async () => {
    await run(['apply', ABSENT]);
    await execa('systemctl', ['stop', 'lxcfs.service'], { env: { SYSTEMCTL_FORCE_BUS: '1' }, reject: false });
    rmSync(dirname(LXCFS_DROPIN), { recursive: true, force: true });
    await execa('systemctl', ['daemon-reload'], { env: { SYSTEMCTL_FORCE_BUS: '1' }, reject: false });
    await sb.stop();
    await execa('umount', [UTS], { reject: false });
  });

  it('validates, the op-dbus JSON form unchanged too', async () => {
    for (const f of [ORIGINAL, JSON_FORM, ABSENT]) {
      const r = await run(['validate', f]);
      expect(r.code, f + r.stdout + r.stderr).toBe(0);
    }
  });

  it('has changes pending on a fresh host (diff exits 2)', async () => {
    const r = await run(['diff', ORIGINAL]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toContain('ovs/bridges/mesh');
    expect(r.stdout).toContain('lxc/containers/100');
  });

  it('converges with one apply, and neither the YAML nor the op-dbus JSON finds anything left to do', async () => {
    // the sandbox namespace has no route to the package mirror: packages first, from outside it
    const p = await opdIn(undefined, ['apply', sectionsOf(NAME, ['packages'])], { ...sb.env, ...extra });
    expect(p.code, p.stdout + p.stderr).toBe(0);
    const a = await run(['apply', DOC]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    await expectSecondApplyNoChanges(run, DOC);
    const d = await run(['diff', DOC]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const j = await run(['diff', JSON_DOC]);
    expect(j.code, j.stdout + j.stderr).toBe(0);
    const o = await run(['diff', ORIGINAL, '-o', 'json']);
    for (const x of pending(o)) expect(HOST_DAEMONS.map((u) => `systemd/units/${u}`)).toContain(x);
  });

  it('runs the three containers on mesh, with the addresses of the guide', async () => {
    const ls = await sb.sh('lxc-ls', ['-P', sb.lxcPath, '-f', '-F', 'name,state']);
    for (const c of ['100', '101', '102']) expect(ls.stdout).toMatch(new RegExp(`^${c}\\s+RUNNING`, 'm'));
    const ports = (await sb.ovs.vsctl(['list-ports', 'mesh'])).split('\n');
    expect(ports).toEqual(expect.arrayContaining(['vi100', 'vi101', 'vi102']));
    expect((await sb.ovs.vsctl(['list-ports', 'ovsbr0'])).split('\n')).toContain('eth0');
    expect((await sb.sh('ip', ['-o', 'addr', 'show', 'dev', 'mesh'])).stdout).toContain('10.0.0.1/24');
    expect((await sb.sh('ip', ['-o', 'addr', 'show', 'dev', 'ovsbr0'])).stdout).toContain('192.168.1.10/24');
    expect((await sb.sh('ip', ['route', 'show', 'default'])).stdout).toContain('via 192.168.1.1 dev ovsbr0');
    expect(await systemctl(['is-enabled', 'openvswitch-switch.service'])).toBe('enabled');
    const uts = await sb.sh('lxc-attach', ['-P', sb.lxcPath, '-n', '100', '--', 'hostname']);
    expect(uts.stdout.trim()).toBe('gateway');
  });

  it('set the hostname, started lxcfs, installed busybox-static, and opened only 22 and 9573 (ovsbr0 and mesh trusted)', async () => {
    expect(readFileSync(join(root, 'etc/hostname'), 'utf8')).toBe('ghostbridge\n');
    expect(String((await execa('nsenter', [`--uts=${UTS}`, 'hostname'])).stdout).trim()).toBe('ghostbridge');
    expect(hostname()).toBe(hostHostname); // the machine's own hostname never changed
    expect(await systemctl(['is-active', 'lxcfs.service'])).toBe('active');
    expect((await execa('dpkg-query', ['-W', '-f', '${Status}', 'busybox-static'])).stdout).toBe(
      'install ok installed',
    );
    const nft = (await sb.sh('nft', ['list', 'table', 'inet', 'opdbus'])).stdout;
    expect(nft).toContain('policy drop');
    for (const r of [
      'iifname "ovsbr0" accept',
      'iifname "mesh" accept',
      'tcp dport 22 accept',
      'tcp dport 9573 accept',
    ])
      expect(nft).toContain(r);
  });

  it('keeps an intact audit trail', async () => {
    expect((await run(['audit', 'verify'])).code).toBe(0);
  });

  it('is undone by the absent document', async () => {
    const a = await run(['apply', ABSENT]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const ls = await sb.sh('lxc-ls', ['-P', sb.lxcPath, '-1']);
    expect(ls.stdout.trim()).toBe('');
    expect((await sb.ovs.vsctl(['list-br'])).trim()).toBe('');
    expect((await sb.sh('nft', ['list', 'table', 'inet', 'opdbus'])).code).not.toBe(0);
    expect((await run(['diff', ABSENT])).code).toBe(0);
    expect((await run(['audit', 'verify'])).code).toBe(0);
  });
});
