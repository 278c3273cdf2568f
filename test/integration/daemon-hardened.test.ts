/**
 * `opd daemon` under the shipped, hardened packaging/systemd/opd.service (seccomp filter,
 * no_new_privs, a capability bounding set, a read-only file system; NotifyAccess=main) in the
 * namespaced systemd, managing what it must not break: an LXC container (busybox, an lxcpath of
 * the test's own), a package through apt (an offline repository of one package of the test's
 * own), a file under the real /etc, a libvirt network (the shared libvirtd) and an Open vSwitch
 * bridge (a private ovsdb). The container must come up exactly as one started by hand: without
 * the daemon's no_new_privs, seccomp filter or capability bounding set.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp, uniq } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';
import { auditEntries, daemonUnit, systemctl, until, type DaemonUnit } from '../helpers/daemon.js';
import { APT_LOCK, locked } from '../helpers/aptrepo.js';

vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

const id = uniq(5);
const C = `hard-${id}`;
const REF = `ref-${id}`;
const PKG = `opd-hard-${id}`;
const REPO = `/srv/opd-hard-repo-${id}`;
const LIST = `/etc/apt/sources.list.d/opd-hard-${id}.list`;
const ETC_DIR = `/etc/opd-hard-${id}`;
const NET = `ohn${id}`;
const BR = `ohb${id}`;
const LIBVIRT = ['-c', 'qemu:///system'];

/**
 * A /proc file of a process seen from the service manager's PID namespace (the namespaced
 * systemd of scripts/backends/systemd.sh: MainPID and the pids its units' LXC monitors report
 * are pids of that namespace), or of the host's when systemd is the host's own.
 */
async function procOfUnit(pid: string, file: string): Promise<string> {
  const sd = existsSync('/run/opd-systemd.pid') ? readFileSync('/run/opd-systemd.pid', 'utf8').trim() : '';
  if (!sd) return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  const r = await execa('nsenter', ['-t', sd, '-p', '-m', 'cat', `/proc/${pid}/${file}`]);
  return String(r.stdout);
}

/** The lines of /proc/PID/status that a sandbox leaves on a process and its children. */
function sandboxOf(status: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of status.split('\n')) {
    const m = /^(NoNewPrivs|Seccomp|Seccomp_filters|CapBnd):\s*(.*)$/.exec(l);
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}

describe('opd daemon under the hardened unit', () => {
  let dir: string;
  let lxcPath: string;
  let ovs: OvsSandbox;
  let unit: DaemonUnit;
  let audit: string;
  let aptHold: ResultPromise | undefined;

  const lxc = async (tool: string, args: string[]) => {
    const r = await execa(tool, ['-P', lxcPath, ...args], { reject: false, timeout: 120_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout).trim(), stderr: String(r.stderr) };
  };
  const state = async (n: string) => (await lxc('lxc-info', ['-n', n, '-s', '-H'])).stdout;
  const initPid = async (n: string) => (await lxc('lxc-info', ['-n', n, '-p', '-H'])).stdout;

  beforeAll(async () => {
    dir = tmp('opd-hardened-');
    lxcPath = join(dir, 'lxc');
    mkdirSync(lxcPath);
    audit = join(dir, 'audit.jsonl');
    ovs = await startOvs();

    // an offline apt repository with one package of this test's own
    const root = join(dir, 'deb');
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    writeFileSync(
      join(root, 'DEBIAN/control'),
      `Package: ${PKG}\nVersion: 1.0\nArchitecture: all\nMaintainer: opd tests <t@invalid>\nDescription: opd test package\n`,
    );
    mkdirSync(REPO, { recursive: true });
    await execa('dpkg-deb', ['--build', '--root-owner-group', root, join(REPO, `${PKG}_1.0_all.deb`)]);
    const scan = await execa('dpkg-scanpackages', ['.', '/dev/null'], { cwd: REPO });
    writeFileSync(join(REPO, 'Packages'), scan.stdout + '\n');
    await execa('chmod', ['-R', 'a+rX', REPO]);
    writeFileSync(LIST, `deb [trusted=yes] file:${REPO} ./\n`);
    const u = await locked('apt-get', [
      'update',
      '-q',
      '-o',
      `Dir::Etc::sourcelist=sources.list.d/opd-hard-${id}.list`,
      '-o',
      'Dir::Etc::sourceparts=-',
      '-o',
      'APT::Get::List-Cleanup=0',
    ]);
    expect(u.code, u.stderr).toBe(0);

    const doc = join(dir, 'state.yaml');
    writeFileSync(
      doc,
      `version: 1
plugins:
  files:
    paths:
      ${ETC_DIR}/managed.conf: { content: "managed under the hardened unit\\n", mode: "0640" }
  packages:
    installed:
      ${PKG}: {}
  libvirt:
    networks:
      ${NET}: { forward: isolated, active: false, autostart: false }
  ovs:
    bridges:
      ${BR}: { ports: { ${BR}p: { type: internal } } }
  lxc:
    containers:
      ${C}:
        template: busybox
        running: true
        config: { lxc.tty.max: 1 }
`,
    );
    // the daemon's apt transaction must not meet the packages tests' (they serialize on this lock)
    // (flock holds it itself, --close: it ends when the shell reads the end of its input)
    aptHold = execa('flock', ['--close', APT_LOCK, 'sh', '-c', 'echo held; read x'], {
      reject: false,
      buffer: false,
      stdin: 'pipe',
    });
    let held = '';
    aptHold.stdout?.on('data', (b: Buffer) => (held += b.toString()));
    await until(() => held.includes('held'), 'the apt lock', 300_000, 200);
    unit = await daemonUnit({
      state: doc,
      dir,
      env: {
        OPD_AUDIT_LOG: audit,
        OPD_LXC_PATH: lxcPath,
        OPD_OVS_DB: ovs.db,
        OPD_LIBVIRT_URI: 'qemu:///system',
        OPD_PACKAGES_BACKEND: 'apt',
        OPD_LXC_STOP_TIMEOUT: '3',
      },
      args: ['--no-dbus', '--debounce', '100', '--backoff', '1', '--poll', '1'],
    });
    try {
      await unit.start();
    } finally {
      aptHold.stdin?.end();
      await aptHold;
    }
  });

  afterAll(async () => {
    await unit?.remove();
    if (lxcPath && existsSync(lxcPath))
      for (const n of readdirSync(lxcPath)) {
        await lxc('lxc-stop', ['-n', n, '-k']);
        await lxc('lxc-destroy', ['-n', n]);
      }
    await execa('virsh', [...LIBVIRT, 'net-undefine', NET], { reject: false });
    await locked('dpkg', ['--purge', PKG]);
    rmSync(LIST, { force: true });
    for (const f of existsSync('/var/lib/apt/lists') ? readdirSync('/var/lib/apt/lists') : [])
      if (f.startsWith(`_srv_opd-hard-repo-${id}_`)) rmSync(join('/var/lib/apt/lists', f), { force: true });
    rmSync(REPO, { recursive: true, force: true });
    rmSync(ETC_DIR, { recursive: true, force: true });
    await ovs?.stop();
    if (dir) await execa('rm', ['-rf', '--one-file-system', dir], { reject: false });
  });

  it('runs sandboxed (no_new_privs, a seccomp filter, NotifyAccess=main) and reached READY with everything converged', async () => {
    const p = await unit.show(['ActiveState', 'NotifyAccess', 'MainPID', 'StatusText']);
    expect(p.ActiveState).toBe('active');
    expect(p.NotifyAccess).toBe('main');
    expect(p.StatusText).toMatch(/^converged, 5 resources/);
    const sb = sandboxOf(await procOfUnit(p.MainPID, 'status'));
    expect(sb.NoNewPrivs).toBe('1');
    expect(sb.Seccomp).toBe('2');
    expect(readFileSync(join(ETC_DIR, 'managed.conf'), 'utf8')).toBe('managed under the hardened unit\n');
    const dpkg = await execa('dpkg-query', ['-W', '-f=${db:Status-Status}', PKG], { reject: false });
    expect(dpkg.stdout).toBe('installed');
    expect((await execa('virsh', [...LIBVIRT, 'net-info', NET])).stdout).toMatch(/Active:\s+no/);
    expect(await ovs.vsctl(['list-ports', BR])).toContain(`${BR}p`);
    expect(await state(C)).toBe('RUNNING');
    const run = auditEntries(audit).find((e) => e.type === 'run.end');
    expect(run?.status).toBe('ok');
  });

  it('starts the container outside its sandbox: the same security state as a container started by hand', async () => {
    const pid = await initPid(C);
    const container = sandboxOf(await procOfUnit(pid, 'status'));
    expect(container.NoNewPrivs).toBe('0');
    // a reference container, same template and base config, started directly by root
    const conf = join(dir, 'ref.conf');
    writeFileSync(conf, 'lxc.apparmor.profile = unconfined\nlxc.net.0.type = empty\n');
    expect((await lxc('lxc-create', ['-n', REF, '-t', 'busybox', '-f', conf])).code).toBe(0);
    const s = await lxc('lxc-start', ['-n', REF, '-d']);
    expect(s.code, s.stderr).toBe(0);
    await until(async () => (await state(REF)) === 'RUNNING', 'the reference container running');
    const ref = sandboxOf(readFileSync(`/proc/${await initPid(REF)}/status`, 'utf8'));
    expect(container).toEqual(ref);
    // it is a unit of the service manager, not a child of the daemon
    const cg = await procOfUnit(pid, 'cgroup');
    expect(cg).not.toContain(unit.name);
    const units = await systemctl(['list-units', '--no-legend', '--plain', `opd-lxc-${C}-*`]);
    expect(units.stdout).toMatch(new RegExp(`^opd-lxc-${C}-[0-9a-f]{8}\\.service\\s+loaded active running`, 'm'));
  });

  it('starts the container again after it was stopped by hand, and keeps it running when the daemon stops', async () => {
    expect((await lxc('lxc-stop', ['-n', C, '-k'])).code).toBe(0);
    await until(async () => (await state(C)) === 'RUNNING', 'the container started again by the daemon', 120_000, 500);
    await until(
      () => auditEntries(audit).some((e) => e.type === 'drift' && e.address === `lxc/containers/${C}`),
      'the drift entry',
    );
    await unit.stop();
    expect((await unit.show(['Result'])).Result).toBe('success');
    expect(await state(C)).toBe('RUNNING');
  });
});
