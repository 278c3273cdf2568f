/**
 * examples/hyper2kvm-daemon.yaml exactly as shipped, on a booted Debian 12 machine
 * (test/machine/harness.ts): the packages from the machine's apt source through opd's packages
 * plugin, the system user and group, directories, configuration files, the default instance, the
 * template with the package's hardening, the vsphere and aws instances and the target, all run by
 * the machine's own systemd; then a reboot and the absent document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, startedByOpd, Timings } from './harness.js';
import {
  STATE,
  apply,
  enableBoot,
  expectBootRun,
  expectNoChanges,
  expectNoDiff,
  expectOk,
  expectShipped,
  failedUnits,
  machineFor,
} from './steps.js';

const EXAMPLE = 'hyper2kvm-daemon.yaml';
const t = new Timings('hyper2kvm-daemon');
const UNITS = ['hyper2kvm.service', 'hyper2kvm@vsphere.service', 'hyper2kvm@aws.service', 'hyper2kvm.target'];
let m: Machine;

describe(`examples/${EXAMPLE} on a booted Debian 12 machine`, () => {
  beforeAll(async () => {
    m = await machineFor('hyper2kvm', EXAMPLE, {}, t);
  });
  afterAll(async () => {
    await m?.destroy();
  });

  it('applies the shipped document with one opd apply (exit 0), and a second apply has no changes', async () => {
    expectOk(await apply(m, t));
    expectNoChanges(await apply(m, t, 'second apply'));
  });

  it('applied exactly the shipped file (the audit trail records its sha256)', () => {
    expectShipped(m, EXAMPLE);
  });

  it('installed qemu-utils and libvirt-daemon-system through the packages plugin', async () => {
    const changes = m.audit().filter((e) => e.type === 'change' && String(e.address).startsWith('packages/'));
    expect(changes.map((e) => `${String(e.address)} ${String(e.result)}`).sort()).toEqual([
      'packages/installed/libvirt-daemon-system ok',
      'packages/installed/qemu-utils ok',
    ]);
    const q = await m.exec(['dpkg-query', '-W', '-f=${Status}\\n', 'qemu-utils', 'libvirt-daemon-system']);
    expect(q.stdout.trim().split('\n')).toEqual(['install ok installed', 'install ok installed']);
  });

  it('runs the daemon, its vsphere and aws instances and the target, started by opd, as the hyper2kvm user', async () => {
    for (const u of UNITS) {
      expect(await m.systemctl(['is-active', u]), u).toBe('active');
      expect(startedByOpd(m.audit(), u), `${u} started by opd`).toBe(true);
    }
    const aws = await m.unit('hyper2kvm@aws.service', ['User', 'ProtectSystem', 'MemoryMax', 'FragmentPath']);
    expect(aws).toEqual({
      User: 'hyper2kvm',
      ProtectSystem: 'strict',
      MemoryMax: String(4 * 1024 ** 3),
      FragmentPath: '/etc/systemd/system/hyper2kvm@.service',
    });
    const id = await m.exec(['id', '-nG', 'hyper2kvm']);
    expect(id.stdout.trim().split(/\s+/)).toEqual(expect.arrayContaining(['hyper2kvm', 'kvm', 'libvirt']));
    const st = await m.exec([
      'stat',
      '-c',
      '%a %U:%G',
      '/var/lib/hyper2kvm/queue',
      '/var/lib/hyper2kvm/queue/vsphere',
      '/var/lib/hyper2kvm/queue/aws',
      '/etc/hyper2kvm/hyper2kvm-aws.conf',
    ]);
    expect(st.stdout.trim().split('\n')).toEqual([
      '750 hyper2kvm:hyper2kvm',
      '750 hyper2kvm:hyper2kvm',
      '750 hyper2kvm:hyper2kvm',
      '640 root:hyper2kvm',
    ]);
  });

  it("has the watch directories its instances' configs name, each written by the hyper2kvm user", async () => {
    for (const i of ['vsphere', 'aws']) {
      const dir = /^watch_dir: (.+)$/m.exec(m.readFile(`/etc/hyper2kvm/hyper2kvm-${i}.conf`))?.[1];
      expect(dir).toBe(`/var/lib/hyper2kvm/queue/${i}`);
      const w = await m.exec(['runuser', '-u', 'hyper2kvm', '--', 'touch', `${dir}/manifest.json`]);
      expect(w.code, w.stderr).toBe(0);
      expect((await m.exec(['rm', `${dir}/manifest.json`])).code).toBe(0);
    }
  });

  it("passes the guide's Verify step (ls -ld queue and output, id hyper2kvm, the service's status), and a service that stopped fails it until opd starts it again", async () => {
    const ls = await m.exec(['ls', '-ld', '/var/lib/hyper2kvm/queue', '/var/lib/hyper2kvm/output']);
    expect(ls.code, ls.stderr).toBe(0);
    expect((await m.exec(['id', 'hyper2kvm'])).stdout).toMatch(/groups=.*\(kvm\)/);
    expect((await m.exec(['systemctl', 'stop', 'hyper2kvm.service'])).code).toBe(0);
    const d = await m.opd(['diff', STATE]);
    expect(d.code, d.stdout + d.stderr).toBe(2);
    expect(d.stdout).toMatch(
      /^~ checks\/commands\/verify-service: check systemctl is-active hyper2kvm\.service \(now: exited 3: inactive\)$/m,
    );
    const a = await apply(m, t, 'repair');
    expectOk(a);
    // the check ran after the unit was started again, and held
    expect(a.stdout).toMatch(/^ok\s+~ checks\/commands\/verify-service/m);
    expect(await m.systemctl(['is-active', 'hyper2kvm.service'])).toBe('active');
    expectNoChanges(await apply(m, t, 'second apply'));
  });

  it('restarts hyper2kvm.service when opd changes hyper2kvm.conf, and only then', async () => {
    const before = (await m.unit('hyper2kvm.service', ['MainPID'])).MainPID;
    m.writeFile('/etc/hyper2kvm/hyper2kvm.conf', '# edited by hand\n', 0o640);
    const a = await apply(m, t, 'repair');
    expectOk(a);
    expect(a.stdout).toMatch(/^ok\s+~ exec\/commands\/restart-hyper2kvm-on-config: refresh/m);
    expect((await m.unit('hyper2kvm.service', ['MainPID'])).MainPID).not.toBe(before);
    expectNoChanges(await apply(m, t, 'second apply'));
  });

  it('comes back after a reboot: the units run again and opd diff finds nothing to do', async () => {
    await enableBoot(m);
    const state = await t.time('reboot', () => m.reboot());
    expect(state, `the rebooted machine runs with nothing failed${await failedUnits(m)}`).toBe('running');
    await expectBootRun(m, EXAMPLE);
    for (const u of UNITS) expect(await m.systemctl(['is-active', u]), u).toBe('active');
    await expectNoDiff(m);
  });

  it('is undone by the absent document', async () => {
    const a = await t.time('absent', () => m.opd(['apply', '/opt/opd/examples/hyper2kvm-daemon-absent.yaml']));
    expectOk(a);
    for (const u of UNITS) expect(await m.systemctl(['is-active', u]), u).not.toBe('active');
    expect((await m.exec(['getent', 'passwd', 'hyper2kvm'])).code).not.toBe(0);
    expect((await m.exec(['test', '-e', '/etc/hyper2kvm'])).code).not.toBe(0);
    expect((await m.opd(['diff', STATE])).code).toBe(2);
  });
});
