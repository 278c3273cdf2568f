/**
 * examples/nqrust-microvm-host.yaml end to end. opd runs inside a network namespace of the
 * test's own (`ip netns exec`), so the NAT bridge fcbr0, the nftables table, ip_forward and the
 * port checks concern that namespace only; the units run under the namespaced systemd, and the
 * two that need the network run in that namespace too (a test drop-in: NetworkNamespacePath):
 * the document's DHCP server (nqrust-dnsmasq) and Debian's PostgreSQL cluster, which opd starts
 * itself (postgresql.service, active_state: active) and which then listens on the guide's port
 * 5432 in the namespace, so the example's own port check meets its own database on every later
 * run. The database password comes from the document's secret file /etc/opd/secrets/nqrust-db.
 * Where the kernel cannot load kvm_amd (no loadable modules, or not an AMD CPU) it is the one
 * resource that does not converge, and opd says why while everything else converges; without
 * /dev/kvm the example's KVM checks block it, which the test asserts before leaving them out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { tmp, type OpdRun } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import {
  bindNetnsIntoSystemd,
  editDoc,
  EXAMPLES,
  exists,
  expectPreconditions,
  expectSecondApplyNoChanges,
  forThisHost,
  opdIn,
  pending,
  sectionsOf,
  systemctl,
  unbindNetnsFromSystemd,
} from '../helpers/examples.js';
import { kvmAmdLoads, modulesLoadable } from '../helpers/host.js';

const dir = tmp('opd-e2e-nqrust-');
chmodSync(dir, 0o755);
const PASSWORD = `nqrust-e2e-${Math.random().toString(36).slice(2, 12)}Z8v2kQ4mW7`;
// the document's secret parameter db_password reads this file (from_file); the test writes it
// (and puts back whatever was there)
const SECRET = '/etc/opd/secrets/nqrust-db';
let savedSecret: Buffer | undefined;
const env: Record<string, string> = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };
// Debian's PostgreSQL cluster (postgresql.service pulls postgresql@<version>-main) runs in the
// test's namespace: a runtime drop-in of the namespaced systemd, removed afterwards
const PG_DROPIN_DIR = '/run/systemd/system/postgresql@.service.d';
const NAME = 'nqrust-microvm-host.yaml';
const ORIGINAL = join(EXAMPLES, NAME);
const ABSENT = join(EXAMPLES, 'nqrust-microvm-host-absent.yaml');
const HOST_DAEMONS: string[] = []; // opd starts PostgreSQL itself (in the test's namespace)
// on a host without /dev/kvm (or smaller than the guide asks) the unmet checks are asserted, then left out
const { doc: DOC, unmet: UNMET } = forThisHost(NAME, HOST_DAEMONS);
/** kvm_amd loads on an AMD host with modules; elsewhere opd's error says why it cannot. */
const KMOD_PENDING = kvmAmdLoads() ? [] : ['kmod/modules/kvm_amd'];
const KMOD_ERROR = modulesLoadable() ? 'modprobe' : 'this kernel cannot load modules here';
/** The same, without the module this kernel cannot load: what a second apply must find converged. */
const CONVERGED = join(dirname(DOC), 'converged.yaml');
let client: Netns;

let ns: Netns;
const runs: OpdRun[] = [];
const run = async (args: string[]) => {
  const r = await opdIn(ns.name, args, env);
  runs.push(r);
  return r;
};

describe('examples/nqrust-microvm-host.yaml', () => {
  beforeAll(async () => {
    await ensureSystemd();
    ns = await createNetns('opdnq');
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    client = await createNetns('opdnqc');
    mkdirSync(dirname(SECRET), { recursive: true, mode: 0o700 });
    if (existsSync(SECRET)) savedSecret = readFileSync(SECRET);
    writeFileSync(SECRET, `${PASSWORD}\n`, { mode: 0o600 });
    // the DHCP server unit and PostgreSQL run in the test's namespace, where fcbr0 is (drop-ins)
    await bindNetnsIntoSystemd(ns.name);
    mkdirSync(PG_DROPIN_DIR, { recursive: true });
    writeFileSync(
      join(PG_DROPIN_DIR, '50-opd-e2e-netns.conf'),
      `[Service]\nNetworkNamespacePath=/run/netns/${ns.name}\n`,
    );
    await systemctl(['daemon-reload']);
    const sandbox = (d: Parameters<Parameters<typeof editDoc>[1]>[0]) => {
      d.plugins.systemd.units['nqrust-dnsmasq.service'].dropins = {
        '50-e2e-netns.conf': `[Service]\nNetworkNamespacePath=/run/netns/${ns.name}\n`,
      };
    };
    editDoc(DOC, sandbox);
    const converged = parse(readFileSync(DOC, 'utf8')) as { plugins: { kmod: { modules: Record<string, unknown> } } };
    // the vendor module's key is the document's parameter kvm_module (default kvm_amd)
    if (KMOD_PENDING.length) delete converged.plugins.kmod.modules['${param.kvm_module}'];
    writeFileSync(CONVERGED, stringify(converged));
  });
  afterAll(async () => {
    await opdIn(ns.name, ['apply', ABSENT], env);
    // the absent document leaves PostgreSQL running (the installer's uninstall does too): stop it
    await systemctl(['stop', 'postgresql.service', 'postgresql@*.service']);
    rmSync(PG_DROPIN_DIR, { recursive: true, force: true });
    await systemctl(['daemon-reload']);
    await unbindNetnsFromSystemd(ns.name);
    await client.remove();
    await ns.remove();
    if (savedSecret) writeFileSync(SECRET, savedSecret, { mode: 0o600 });
    else rmSync(SECRET, { force: true });
  });

  it('validates', async () => {
    expect((await run(['validate', ORIGINAL])).code).toBe(0);
    expect((await run(['validate', ABSENT])).code).toBe(0);
  });

  it('has changes pending on a fresh host, its databases unknown while PostgreSQL is stopped (diff exits 69)', async () => {
    const r = await run(['diff', ORIGINAL]);
    expect(r.code, r.stderr).toBe(69);
    expect(r.stdout).toContain('net/interfaces/fcbr0');
    expect(r.stdout).toMatch(/unknown \(databases unreachable\)/);
  });

  it('is blocked by exactly the preconditions this host cannot meet, and then changes nothing', async () => {
    // --partial: PostgreSQL is still stopped, so only the checks may stop this apply
    await expectPreconditions((args) => run(args[0] === 'apply' ? [...args, '--partial'] : args), ORIGINAL, UNMET);
  });

  it('starts a stopped PostgreSQL itself; its database follows on the next run (--partial)', async () => {
    // the namespace has no route to the package mirror: the example's packages go first, from outside it
    const p = await opdIn(undefined, ['apply', sectionsOf(NAME, ['packages'])], env);
    expect(p.code, p.stdout + p.stderr).toBe(0);
    // PostgreSQL is installed but not running (apt starts no service on this machine): the
    // databases plugin cannot read it, so a plain apply changes nothing (exit 69) and --partial
    // applies the rest, starting postgresql.service, and names the databases as unreachable
    expect(await systemctl(['is-active', 'postgresql.service'])).not.toBe('active');
    const plain = await run(['apply', DOC]);
    expect(plain.code, plain.stdout + plain.stderr).toBe(69);
    expect(plain.stderr).toContain('nothing was applied');
    const a = await run(['apply', DOC, '--partial']);
    expect(a.code, a.stdout + a.stderr).toBe(1);
    expect(a.stdout + a.stderr).toMatch(/databases.*unreachable|unreachable.*databases/);
    expect(await systemctl(['is-active', 'postgresql.service'])).toBe('active');
  });

  it('converges everything but a kernel module this machine cannot load, and says why', async () => {
    const a = await run(['apply', DOC]);
    const failed = a.stdout.split('\n').filter((l) => /^FAILED\s/.test(l));
    expect(a.stdout).not.toMatch(/^skipped/m);
    if (KMOD_PENDING.length) {
      expect(a.code, a.stdout + a.stderr).toBe(1);
      expect(failed, a.stdout).toHaveLength(1);
      expect(failed[0]).toContain('kmod/modules/kvm_amd');
      expect(a.stdout + a.stderr).toContain(KMOD_ERROR);
    } else {
      expect(a.code, a.stdout + a.stderr).toBe(0);
      expect(failed).toEqual([]);
    }
  });

  it('leaves only a module this machine cannot load pending: zero false diffs', async () => {
    const d = await run(['diff', DOC, '-o', 'json']);
    expect(d.code, d.stderr).toBe(KMOD_PENDING.length ? 2 : 0);
    if (KMOD_PENDING.length) expect(pending(d)).toEqual(KMOD_PENDING);
    // the unmodified example differs at most in the host daemon this shared machine does not
    // start and in the preconditions this host cannot meet
    const o = await run(['diff', ORIGINAL, '-o', 'json']);
    const allowed = [
      ...KMOD_PENDING,
      ...HOST_DAEMONS.map((u) => `systemd/units/${u}`),
      ...Object.keys(UNMET).map((r) => `checks/require/${r}`),
    ];
    for (const a of pending(o)) expect(allowed).toContain(a);
    for (const a of KMOD_PENDING) expect(pending(o)).toContain(a);
  });

  it('starts PostgreSQL itself: postgresql.service and its cluster are active, listening on 5432', async () => {
    expect(await systemctl(['is-active', 'postgresql.service'])).toBe('active');
    const clusters = (
      await systemctl(['list-units', '--plain', '--no-legend', '--state=active', 'postgresql@*.service'])
    )
      .split('\n')
      .filter(Boolean);
    expect(clusters.length, clusters.join('\n')).toBeGreaterThan(0);
    expect(await ns.exec('ss', ['-Hltnp', 'sport = :5432'])).toMatch(/127\.0\.0\.1:5432.*postgres/);
  });

  it('applies a second time with no changes, with its own PostgreSQL on 5432 (exit 0)', async () => {
    expect(await ns.exec('ss', ['-Hltn', 'sport = :5432'])).toContain('127.0.0.1:5432');
    await expectSecondApplyNoChanges(run, CONVERGED);
  });

  it('runs its DHCP server: a client on fcbr0 gets a lease from the range', async () => {
    expect(await systemctl(['is-active', 'nqrust-dnsmasq.service'])).toBe('active');
    await ns.exec('ip', ['link', 'add', 'nqdhcp0', 'type', 'veth', 'peer', 'name', 'nqdhcp1', 'netns', client.name]);
    await ns.exec('ip', ['link', 'set', 'nqdhcp0', 'master', 'fcbr0', 'up']);
    await client.exec('ip', ['link', 'set', 'lo', 'up']);
    await client.exec('ip', ['link', 'set', 'nqdhcp1', 'up']);
    // udhcpc: -n exit when no lease, -q quit after the lease, -t/-T retries; -s /bin/true: configure nothing
    const r = await execa(
      'ip',
      [
        'netns',
        'exec',
        client.name,
        'busybox',
        'udhcpc',
        '-i',
        'nqdhcp1',
        '-n',
        '-q',
        '-f',
        '-t',
        '20',
        '-T',
        '3',
        '-s',
        '/bin/true',
      ],
      { reject: false, all: true },
    );
    const lease = /lease of (10\.0\.0\.(\d+)) obtained/.exec(String(r.all));
    expect(lease, String(r.all)).not.toBeNull();
    const host = Number(lease![2]);
    expect(host).toBeGreaterThanOrEqual(10);
    expect(host).toBeLessThanOrEqual(250);
  });

  it('set up the host as the installer would', async () => {
    expect(await ns.exec('ip', ['-o', 'addr', 'show', 'dev', 'fcbr0'])).toContain('10.0.0.1/24');
    expect((await ns.exec('cat', ['/proc/sys/net/ipv4/ip_forward'])).trim()).toBe('1');
    expect(await ns.exec('nft', ['list', 'table', 'inet', 'nqrust'])).toContain('masquerade');
    expect(readFileSync('/etc/modules-load.d/opd-kvm_amd.conf', 'utf8')).toContain('kvm_amd');
    expect(readFileSync('/etc/modprobe.d/opd-kvm_amd.conf', 'utf8')).toContain('nested=1');
    expect(readFileSync('/etc/udev/rules.d/65-nqrust-kvm.rules', 'utf8')).toContain('MODE="0660"');
    expect(statSync('/etc/sudoers.d/nqrust').mode & 0o777).toBe(0o440);
    expect(statSync('/etc/nqrust-microvm/manager.env').mode & 0o777).toBe(0o640);
    // the password reached the manager's config from the secret file; the document holds none
    expect(readFileSync('/etc/nqrust-microvm/manager.env', 'utf8')).toContain(
      `postgres://nexus:${PASSWORD}@localhost:5432/nexus`,
    );
    expect(readFileSync(ORIGINAL, 'utf8')).not.toMatch(/^\s*password:[ \t]*(?!"\$\{param\.)\S/m);
    expect(String((await execa('id', ['-nG', 'nqrust'])).stdout).split(/\s+/)).toContain('kvm');
    for (const u of ['nqrust-manager.service', 'nqrust-agent.service', 'nqrust-dnsmasq.service'])
      expect(await systemctl(['is-active', u])).toBe('active');
    expect(await systemctl(['show', '-p', 'User', '--value', 'nqrust-manager.service'])).toBe('nqrust');
    // the manager's DATABASE_URL: nexus with the secret's password over TCP, localhost:5432
    const psql = await execa(
      'ip',
      [
        'netns',
        'exec',
        ns.name,
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
      {
        env: { PGPASSWORD: PASSWORD },
        reject: false,
      },
    );
    expect(psql.stdout.trim(), psql.stderr).toBe('nexus');
  });

  it('never shows the database password and keeps an intact audit trail', async () => {
    expect((await run(['audit', 'verify'])).code).toBe(0);
    for (const r of runs) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    expect(readFileSync(env.OPD_AUDIT_LOG, 'utf8')).not.toContain(PASSWORD);
  });

  it('is undone by the absent document', async () => {
    const a = await run(['apply', ABSENT]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await systemctl(['is-active', 'nqrust-manager.service'])).not.toBe('active');
    expect(await systemctl(['is-active', 'nqrust-dnsmasq.service'])).not.toBe('active');
    for (const p of [
      '/etc/systemd/system/nqrust-manager.service',
      '/etc/nqrust-microvm',
      '/opt/nqrust-microvm',
      '/etc/sudoers.d/nqrust',
      '/srv/fc',
      '/etc/modules-load.d/opd-kvm_amd.conf',
      '/etc/udev/rules.d/65-nqrust-kvm.rules',
    ]) {
      expect(existsSync(p), p).toBe(false);
    }
    expect(await exists('getent', ['passwd', 'nqrust'])).toBe(false);
    expect(await exists('ip', ['netns', 'exec', ns.name, 'ip', 'link', 'show', 'fcbr0'])).toBe(false);
    expect((await run(['diff', ABSENT])).code).toBe(0);
    expect((await run(['audit', 'verify'])).code).toBe(0);
  });
});
