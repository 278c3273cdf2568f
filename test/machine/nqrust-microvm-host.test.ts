/**
 * examples/nqrust-microvm-host.yaml exactly as shipped, on a booted Debian 12 machine
 * (test/machine/harness.ts). The database password is the document's secret file
 * (/etc/opd/secrets/nqrust-db); the document takes no other parameter. The machine is a container:
 * kernel modules cannot be loaded there, so the example's kmod resources do not apply (its
 * `when: { modules_loadable: true }`): the test asserts that outcome from the machine's facts,
 * and that the vendor module the document names is the host CPU's (kvm_intel / kvm_amd).
 * Without /dev/kvm (OPD_MACHINE_KVM=0, or a host without it) the example's KVM preflight blocks it
 * and nothing is applied: the test asserts that instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Machine, runsOf, startedByOpd, Timings } from './harness.js';
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

const EXAMPLE = 'nqrust-microvm-host.yaml';
const t = new Timings('nqrust-microvm-host');
const PASSWORD = `nq-${Math.random().toString(36).slice(2, 12)}-Z8v2kQ4mW7`;
const SERVICES = ['postgresql.service', 'nqrust-manager.service', 'nqrust-agent.service', 'nqrust-dnsmasq.service'];
const vendor = /^vendor_id\s*:\s*AuthenticAMD/m.test(readFileSync('/proc/cpuinfo', 'utf8'))
  ? 'amd'
  : /^vendor_id\s*:\s*GenuineIntel/m.test(readFileSync('/proc/cpuinfo', 'utf8'))
    ? 'intel'
    : 'other';
let m: Machine;
let kvm = false;

/** The network state opd-boot brings back at every boot. */
async function expectNetwork(): Promise<void> {
  expect((await m.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'fcbr0'])).stdout).toContain('inet 10.0.0.1/24');
  expect((await m.exec(['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('1');
  const nft = (await m.exec(['nft', 'list', 'table', 'inet', 'nqrust'])).stdout;
  expect(nft).toContain('ip saddr 10.0.0.0/24 oifname != "fcbr0" masquerade');
  expect(nft).toContain('iifname "fcbr0" udp dport 67 accept');
}

describe(`examples/${EXAMPLE} on a booted Debian 12 machine`, () => {
  beforeAll(async () => {
    m = await machineFor('nqrust', EXAMPLE, { secrets: { '/etc/opd/secrets/nqrust-db': PASSWORD } }, t);
    kvm = (await factsOf(m)).kvm_device === true;
  });
  afterAll(async () => {
    await m?.destroy();
  });

  it('names the host CPU vendor module and leaves the kernel modules out where they cannot be loaded (facts)', async () => {
    const f = await factsOf(m);
    expect(f.cpu_vendor).toBe(vendor);
    expect(f.container).toBe(true);
    expect(f.modules_loadable, 'a container cannot load kernel modules').toBe(false);
    expect(f.kvm_device).toBe(m.kvm);
    const d = await m.opd(['diff', STATE]);
    expect(d.stderr).toMatch(
      /^opd: not on this host: \/etc\/opd\/state\.yaml:\d+:\d+: kmod\/modules\/kvm: modules_loadable is false/m,
    );
    if (vendor !== 'other')
      expect(d.stderr).toMatch(new RegExp(`kmod/modules/kvm_${vendor}: modules_loadable is false`));
  });

  it('applies the shipped document with one opd apply (exit 0; without /dev/kvm its KVM preflight blocks it), and a second apply has no changes', async () => {
    const a = await apply(m, t);
    if (!kvm) {
      expect(a.code, a.stdout + a.stderr).toBe(1);
      expect(a.stdout).toMatch(/^blocked checks\/require\/nqrust-preflight: .*kvm_device: \/dev\/kvm does not exist/m);
      expect(a.stdout).toContain('nothing was applied');
      return;
    }
    expectOk(a);
    // PostgreSQL is installed and started by this run: its database and role follow in the run's second stage
    expect(a.stdout).toMatch(/^ok\s+\+ databases\/pg_roles\/nexus/m);
    expectNoChanges(await apply(m, t, 'second apply'));
  });

  it('applied exactly the shipped file (the audit trail records its sha256), resolved with the machine facts', () => {
    expectShipped(m, EXAMPLE, !kvm);
    if (!kvm) return;
    const start = runsOf(m.audit(), STATE)[0];
    expect((start.facts as Record<string, unknown>).cpu_vendor).toBe(vendor);
    expect(start.excluded).toEqual(
      vendor === 'other' ? ['kmod/modules/kvm'] : ['kmod/modules/kvm', `kmod/modules/kvm_${vendor}`],
    );
  });

  it("runs PostgreSQL (Debian's unit), the manager, the agent and the DHCP server, all started by opd", async () => {
    if (!kvm) {
      for (const u of SERVICES) expect(await m.systemctl(['is-active', u]), u).not.toBe('active');
      return;
    }
    for (const u of SERVICES) {
      expect(await m.systemctl(['is-active', u]), u).toBe('active');
      expect(startedByOpd(m.audit(), u), `${u} started by opd`).toBe(true);
    }
    expect((await m.unit('postgresql.service', ['FragmentPath'])).FragmentPath).toBe(
      '/lib/systemd/system/postgresql.service',
    );
    const clusters = await m.systemctl([
      'list-units',
      '--plain',
      '--no-legend',
      '--state=active',
      'postgresql@*.service',
    ]);
    expect(clusters, 'a PostgreSQL cluster runs').toMatch(/postgresql@\d+-main\.service/);
    expect((await m.unit('nqrust-manager.service', ['User'])).User).toBe('nqrust');
    expect((await m.exec(['ss', '-Hltn', 'sport = :5432'])).stdout).toContain('127.0.0.1:5432');
    // the modules were not touched: no persistence files in a container
    expect((await m.exec(['sh', '-c', 'ls /etc/modules-load.d/opd-* 2>/dev/null'])).stdout).toBe('');
  });

  it('set up the host as the installer does: packages, the nqrust user in kvm, the udev rule, sudoers, directories and 0640 configs', async () => {
    if (!kvm) return;
    const q = await m.exec([
      'dpkg-query',
      '-W',
      '-f=${Package} ${Status}\\n',
      'postgresql',
      'dnsmasq-base',
      'bridge-utils',
      'sudo',
      'screen',
      'build-essential',
    ]);
    for (const l of q.stdout.trim().split('\n')) expect(l).toMatch(/ install ok installed$/);
    expect((await m.exec(['id', '-nG', 'nqrust'])).stdout.trim().split(/\s+/)).toEqual(
      expect.arrayContaining(['nqrust', 'kvm']),
    );
    expect(m.readFile('/etc/udev/rules.d/65-nqrust-kvm.rules')).toContain('KERNEL=="kvm", GROUP="kvm", MODE="0660"');
    const st = await m.exec([
      'stat',
      '-c',
      '%n %a %U:%G',
      '/etc/sudoers.d/nqrust',
      '/etc/nqrust-microvm/manager.env',
      '/etc/nqrust-microvm/config.yaml',
      '/srv/fc/vms',
      '/srv/images',
    ]);
    expect(st.stdout.trim().split('\n')).toEqual([
      '/etc/sudoers.d/nqrust 440 root:root',
      '/etc/nqrust-microvm/manager.env 640 root:nqrust',
      '/etc/nqrust-microvm/config.yaml 640 root:nqrust',
      '/srv/fc/vms 750 nqrust:nqrust',
      '/srv/images 755 nqrust:nqrust',
    ]);
    expect((await m.exec(['visudo', '-cf', '/etc/sudoers.d/nqrust'])).code).toBe(0);
  });

  it("gives the agent's commands to sudo as the installer does (firecracker, ip, brctl, systemd-run, screen), beside the manager's", async () => {
    if (!kvm) return;
    const l = await m.exec(['sudo', '-l', '-U', 'nqrust']);
    expect(l.code, l.stderr).toBe(0);
    for (const c of [
      '/usr/local/bin/firecracker',
      '/usr/sbin/ip',
      '/usr/sbin/brctl',
      '/usr/bin/systemd-run',
      '/usr/bin/screen',
      '/usr/bin/mount',
    ])
      expect(l.stdout, c).toContain(c);
    // what sudo grants nqrust: the agent's networking runs without a password, and a command not listed is refused
    const ip = await m.exec(['runuser', '-u', 'nqrust', '--', 'sudo', '-n', '/usr/sbin/ip', 'link', 'show', 'fcbr0']);
    expect(ip.code, ip.stderr).toBe(0);
    const no = await m.exec(['runuser', '-u', 'nqrust', '--', 'sudo', '-n', '/usr/bin/id']);
    expect(no.code).not.toBe(0);
  });

  it('builds Rust with the toolchain the installer asks for (1.70+), and its conflicting-software check names a system-wide dnsmasq', async () => {
    if (!kvm) return;
    const v = (await m.exec(['rustc', '--version'])).stdout;
    expect(Number(/^rustc 1\.(\d+)\./.exec(v)?.[1]), v).toBeGreaterThanOrEqual(70);
    const b = await m.exec(
      [
        'sh',
        '-c',
        'cd /tmp && rm -rf rs && cargo new --offline -q rs && cd rs && cargo build --offline -q && ./target/debug/rs',
      ],
      { timeout: 300_000 },
    );
    expect(b.stdout.trim(), b.stderr).toBe('Hello, world!');
    // the check held at apply (a second apply had no changes); a dnsmasq.service running host-wide fails it
    const run = await m.exec(['systemd-run', '--unit=dnsmasq.service', '--', 'sleep', 'infinity']);
    expect(run.code, run.stderr).toBe(0);
    const d = await m.opd(['diff', STATE]);
    await m.exec(['systemctl', 'stop', 'dnsmasq.service']);
    expect(d.code, d.stdout + d.stderr).toBe(2);
    expect(d.stdout).toMatch(
      /^~ checks\/commands\/no-system-dnsmasq: check systemctl is-active dnsmasq\.service .*\(now: exited 0: active\)$/m,
    );
    await expectNoDiff(m);
  });

  it("logs in to PostgreSQL as nexus with the secret file's password (the manager's DATABASE_URL)", async () => {
    if (!kvm) return expect((await m.exec(['getent', 'passwd', 'nqrust'])).code).not.toBe(0);
    const q = await m.exec(
      [
        'psql',
        '-X',
        '-A',
        '-t',
        '-h',
        '127.0.0.1',
        '-p',
        '5432',
        '-U',
        'nexus',
        '-d',
        'nexus',
        '-c',
        'select current_user',
      ],
      { env: { PGPASSWORD: PASSWORD } },
    );
    expect(q.stdout.trim(), q.stderr).toBe('nexus');
    expect(m.readFile('/etc/nqrust-microvm/manager.env')).toContain(
      `postgres://nexus:${PASSWORD}@localhost:5432/nexus`,
    );
    for (const e of m.audit()) expect(JSON.stringify(e)).not.toContain(PASSWORD);
  });

  it('sets up the NAT network: fcbr0, masquerade, DHCP input, ip_forward; a DHCP client in a second namespace gets a lease', async () => {
    if (!kvm) return;
    await expectNetwork();
    expect((await m.exec(['test', '-f', '/etc/sysctl.d/90-opd-net.ipv4.ip_forward.conf'])).code).toBe(0);
    const lease = await dhcpLease();
    expect(lease, 'a lease from the range 10.0.0.10-250').toMatch(/^10\.0\.0\.(\d+)$/);
    const host = Number(lease!.split('.')[3]);
    expect(host).toBeGreaterThanOrEqual(10);
    expect(host).toBeLessThanOrEqual(250);
  });

  it('comes back after a reboot: fcbr0, NAT and ip_forward before network.target, the services, and opd diff finds nothing to do', async () => {
    if (!kvm) return;
    await enableBoot(m);
    const state = await t.time('reboot', () => m.reboot());
    expect(state, `the rebooted machine runs with nothing failed${await failedUnits(m)}`).toBe('running');
    await expectBootRun(m, EXAMPLE);
    await expectNetwork();
    for (const u of SERVICES) expect(await m.systemctl(['is-active', u]), u).toBe('active');
    await expectNoDiff(m);
    expect(await dhcpLease(), 'DHCP serves again').toMatch(/^10\.0\.0\.\d+$/);
  });

  it('is undone by the absent document', async () => {
    if (!kvm) return;
    const a = await t.time('absent', () => m.opd(['apply', '/opt/opd/examples/nqrust-microvm-host-absent.yaml']));
    expectOk(a);
    for (const u of ['nqrust-manager.service', 'nqrust-dnsmasq.service'])
      expect(await m.systemctl(['is-active', u]), u).not.toBe('active');
    expect((await m.exec(['getent', 'passwd', 'nqrust'])).code).not.toBe(0);
    expect((await m.exec(['ip', 'link', 'show', 'fcbr0'])).code).not.toBe(0);
  });
});

/** A DHCP client (isc-dhcp-client, in the image) in a network namespace of its own inside the machine, on fcbr0. */
async function dhcpLease(): Promise<string | undefined> {
  const ns = `dhc${Math.random().toString(36).slice(2, 6)}`;
  const sh = [
    'set -e',
    `ip netns add ${ns}`,
    `ip link add ${ns}h type veth peer name ${ns}c netns ${ns}`,
    `ip link set ${ns}h master fcbr0 up`,
    `ip -n ${ns} link set lo up`,
    `ip -n ${ns} link set ${ns}c up`,
    `ip netns exec ${ns} dhclient -1 -v -sf /bin/true -lf /tmp/${ns}.leases -pf /tmp/${ns}.pid ${ns}c 2>&1 || true`,
    `kill $(cat /tmp/${ns}.pid 2>/dev/null) 2>/dev/null || true`,
    `ip link del ${ns}h || true`,
    `ip netns del ${ns}`,
  ].join('\n');
  const r = await m.exec(['sh', '-c', sh], { timeout: 120_000 });
  return /bound to (10\.0\.0\.\d+)/.exec(r.stdout + r.stderr)?.[1];
}
