/**
 * examples/nqrust-microvm-host.yaml end to end. opd runs inside a network namespace of the
 * test's own (`ip netns exec`), so the NAT bridge fcbr0, the nftables table, ip_forward and the
 * port checks concern that namespace only; PostgreSQL is a private server
 * (scripts/backends/databases.sh); the units run under the namespaced systemd.
 * Where the kernel cannot load kvm_amd (no loadable modules, or not an AMD CPU) it is the one
 * resource that does not converge, and opd says why while everything else converges; without
 * /dev/kvm the example's KVM checks block it, which the test asserts before leaving them out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmp, type OpdRun } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { EXAMPLES, exists, expectPreconditions, forThisHost, opdIn, pending, sectionsOf, startDatabases, systemctl } from '../helpers/examples.js';
import { kvmAmdLoads, modulesLoadable } from '../helpers/host.js';

const dir = tmp('opd-e2e-nqrust-');
chmodSync(dir, 0o755); // the database servers run as postgres / mysql and must reach their directory
const env: Record<string, string> = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_PACKAGES_BACKEND: 'apt' };
const NAME = 'nqrust-microvm-host.yaml';
const ORIGINAL = join(EXAMPLES, NAME);
const ABSENT = join(EXAMPLES, 'nqrust-microvm-host-absent.yaml');
const HOST_DAEMONS = ['postgresql.service']; // the test's PostgreSQL is a private server
// on a host without /dev/kvm (or smaller than the guide asks) the unmet checks are asserted, then left out
const { doc: DOC, unmet: UNMET } = forThisHost(NAME, HOST_DAEMONS);
/** kvm_amd loads on an AMD host with modules; elsewhere opd's error says why it cannot. */
const KMOD_PENDING = kvmAmdLoads() ? [] : ['kmod/modules/kvm_amd'];
const KMOD_ERROR = modulesLoadable() ? 'modprobe' : 'this kernel cannot load modules here';
const PASSWORD = 'nqrust-example-Z8v2kQ4mW7xR1tY9';

let ns: Netns;
let stopDb: () => Promise<void> = async () => {};
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
    const db = await startDatabases(join(dir, 'db'), 55442); // a port of its own: tests run in parallel
    Object.assign(env, db.env);
    stopDb = db.stop;
  });
  afterAll(async () => {
    await opdIn(ns.name, ['apply', ABSENT], env);
    await ns.remove();
    await stopDb();
  });

  it('validates', async () => {
    expect((await run(['validate', ORIGINAL])).code).toBe(0);
    expect((await run(['validate', ABSENT])).code).toBe(0);
  });

  it('has changes pending on a fresh host (diff exits 2)', async () => {
    const r = await run(['diff', ORIGINAL]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toContain('net/interfaces/fcbr0');
  });

  it('is blocked by exactly the preconditions this host cannot meet, and then changes nothing', async () => {
    await expectPreconditions(run, ORIGINAL, UNMET);
  });

  it('converges everything but a kernel module this machine cannot load, and says why', async () => {
    // the namespace has no route to the package mirror: the example's packages go first, from outside it
    const p = await opdIn(undefined, ['apply', sectionsOf(NAME, ['packages'])], env);
    expect(p.code, p.stdout + p.stderr).toBe(0);
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
    const allowed = [...KMOD_PENDING, ...HOST_DAEMONS.map((u) => `systemd/units/${u}`), ...Object.keys(UNMET).map((r) => `checks/require/${r}`)];
    for (const a of pending(o)) expect(allowed).toContain(a);
    for (const a of KMOD_PENDING) expect(pending(o)).toContain(a);
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
    expect(String((await execa('id', ['-nG', 'nqrust'])).stdout).split(/\s+/)).toContain('kvm');
    for (const u of ['nqrust-manager.service', 'nqrust-agent.service']) expect(await systemctl(['is-active', u])).toBe('active');
    expect(await systemctl(['show', '-p', 'User', '--value', 'nqrust-manager.service'])).toBe('nqrust');
    const psql = await execa('psql', ['-X', '-A', '-t', '-h', env.OPD_PG_HOST, '-p', env.OPD_PG_PORT, '-U', 'nexus', '-d', 'nexus', '-c', 'select current_user'], {
      env: { PGPASSWORD: PASSWORD },
      reject: false,
    });
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
    for (const p of ['/etc/systemd/system/nqrust-manager.service', '/etc/nqrust-microvm', '/opt/nqrust-microvm', '/etc/sudoers.d/nqrust', '/srv/fc', '/etc/modules-load.d/opd-kvm_amd.conf', '/etc/udev/rules.d/65-nqrust-kvm.rules']) {
      expect(existsSync(p), p).toBe(false);
    }
    expect(await exists('getent', ['passwd', 'nqrust'])).toBe(false);
    expect(await exists('ip', ['netns', 'exec', ns.name, 'ip', 'link', 'show', 'fcbr0'])).toBe(false);
    expect((await run(['diff', ABSENT])).code).toBe(0);
    expect((await run(['audit', 'verify'])).code).toBe(0);
  });
});
