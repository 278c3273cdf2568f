/**
 * examples/ravada-server.yaml exactly as shipped, on a booted Debian 12 machine
 * (test/machine/harness.ts): `admin_address` from the machine's vars file, the two passwords from
 * the document's secret files. MariaDB (Debian's unit) is installed and started by the same apply,
 * its database and user follow in the run's second stage; libvirtd through its socket. The
 * console ports answer the admin workstation and drop everyone else, from another host (the
 * upstream namespace, the other end of the machine's NIC).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, NET, startedByOpd, Timings } from './harness.js';
import {
  apply,
  enableBoot,
  expectBootRun,
  expectNoChanges,
  expectNoDiff,
  expectOk,
  expectShipped,
  factsOf,
  machineFor,
  STATE,
} from './steps.js';

const EXAMPLE = 'ravada-server.yaml';
const t = new Timings('ravada-server');
const DB_PASSWORD = `rvd-${Math.random().toString(36).slice(2, 12)}-Q3n8vL5`;
const ADMIN_PASSWORD = `adm-${Math.random().toString(36).slice(2, 12)}-Hc5wN1`;
const ADMIN = '192.168.1.20'; // the admin workstation, on the machine's network
const OTHER = '192.168.1.30'; // anyone else there
const SERVICES = ['mariadb.service', 'rvd_back.service', 'rvd_front.service', 'libvirtd.socket'];
let m: Machine;
let kvm = false;

const mysql = (sql: string, user: string[] = ['-u', 'root']) =>
  m.exec(['mysql', '--socket=/run/mysqld/mysqld.sock', ...user, '--batch', '--raw', '--skip-column-names', '-e', sql]);

async function expectConsolePorts(): Promise<void> {
  await m.listen(5901);
  expect(await m.reach(NET.address, 5901, ADMIN), 'the admin workstation reaches a console port').toBe('ok');
  expect(await m.reach(NET.address, 5901, OTHER), 'anyone else is dropped').toBe('timeout');
  await m.exec(['systemctl', 'stop', 'opd-test-listen-5901.service']);
}

describe(`examples/${EXAMPLE} on a booted Debian 12 machine`, () => {
  beforeAll(async () => {
    m = await machineFor(
      'ravada',
      EXAMPLE,
      {
        vars: { admin_address: ADMIN },
        secrets: { '/etc/opd/secrets/ravada-db': DB_PASSWORD, '/etc/opd/secrets/ravada-admin': ADMIN_PASSWORD },
      },
      t,
    );
    kvm = (await factsOf(m)).kvm_device === true;
    for (const a of [ADMIN, OTHER]) await m.upstreamExec(['ip', 'addr', 'add', `${a}/24`, 'dev', 'uplink0']);
  });
  afterAll(async () => {
    await m?.destroy();
  });

  it('applies the shipped document with one opd apply (exit 0; without /dev/kvm its KVM check blocks it), and a second apply has no changes', async () => {
    const a = await apply(m, t);
    if (!kvm) {
      expect(a.code, a.stdout + a.stderr).toBe(1);
      expect(a.stdout).toMatch(/^blocked checks\/require\/ravada-kvm: .*kvm_device/m);
      expect(a.stdout).toContain('nothing was applied');
      return;
    }
    expectOk(a);
    expect(a.stdout).toMatch(/^ok\s+~ exec\/commands\/add-admin-user: run \/usr\/sbin\/rvd_back --add-user admin/m);
    const q = await m.exec([
      'dpkg-query',
      '-W',
      '-f=${Status}\\n',
      'mariadb-server',
      'libsys-virt-perl',
      'libmojolicious-perl',
      'perlmagick',
    ]);
    expect(q.stdout.trim().split('\n')).toEqual(Array(4).fill('install ok installed'));
    expectNoChanges(await apply(m, t, 'second apply'));
  });

  it('applied exactly the shipped file (the audit trail records its sha256)', () => {
    expectShipped(m, EXAMPLE, !kvm);
  });

  it("runs MariaDB (Debian's unit), rvd_back, rvd_front and libvirtd's socket, all started by opd", async () => {
    if (!kvm) {
      for (const u of SERVICES) expect(await m.systemctl(['is-active', u]), u).not.toBe('active');
      return;
    }
    for (const u of SERVICES) {
      expect(await m.systemctl(['is-active', u]), u).toBe('active');
      expect(startedByOpd(m.audit(), u), `${u} started by opd`).toBe(true);
    }
    expect((await m.unit('mariadb.service', ['FragmentPath'])).FragmentPath).toBe(
      '/lib/systemd/system/mariadb.service',
    );
    expect((await m.unit('rvd_front.service', ['User'])).User).toBe('ravada');
    const dirs = await m.exec(['stat', '-c', '%n %U', '/var/www/ravada/log', '/var/www/img/screenshots']);
    expect(dirs.stdout.trim().split('\n')).toEqual(['/var/www/ravada/log ravada', '/var/www/img/screenshots ravada']);
    expect((await m.exec(['ss', '-Hltn', 'sport = :3306'])).stdout).toContain(':3306');
    // libvirtd answers through its socket (socket activation starts it)
    const v = await m.exec(['virsh', '-c', 'qemu:///system', 'version']);
    expect(v.code, v.stderr).toBe(0);
    expect(await m.systemctl(['is-enabled', 'libvirtd.service'])).toBe('enabled');
  });

  it("logs in to MariaDB as rvd_user with the secret file's password; the database, its grant and the web admin user exist", async () => {
    if (!kvm) return;
    const login = await mysql('SELECT CURRENT_USER()', ['-u', 'rvd_user', `-p${DB_PASSWORD}`, 'ravada']);
    expect(login.stdout.trim(), login.stderr).toBe('rvd_user@localhost');
    expect((await mysql("SHOW GRANTS FOR 'rvd_user'@'localhost'")).stdout).toMatch(
      /GRANT ALL PRIVILEGES ON `ravada`\.\* TO `rvd_user`@`localhost`/,
    );
    expect((await mysql("SELECT CONCAT(name, ':', is_admin) FROM ravada.users")).stdout.trim()).toBe('admin:1');
    expect(m.readFile('/etc/ravada.conf')).toContain(`password: "${DB_PASSWORD}"`);
    expect((await m.exec(['stat', '-c', '%a %U:%G', '/etc/ravada.conf'])).stdout.trim()).toBe('640 root:ravada');
    for (const e of m.audit()) {
      expect(JSON.stringify(e)).not.toContain(DB_PASSWORD);
      expect(JSON.stringify(e)).not.toContain(ADMIN_PASSWORD);
    }
  });

  it('answers the console ports to the admin workstation of the vars file only (nftables)', async () => {
    if (!kvm) return;
    const nft = (await m.exec(['nft', 'list', 'table', 'inet', 'ravada'])).stdout;
    expect(nft).toContain('iifname "virbr0" ip saddr 192.168.122.0/24 udp sport 67-68 udp dport 67-68 accept');
    expect(nft).toContain(`ip saddr ${ADMIN} tcp dport 5900-7000 accept`);
    await expectConsolePorts();
  });

  it('comes back after a reboot: the firewall before network.target, the services, and opd diff finds nothing to do', async () => {
    if (!kvm) return;
    await enableBoot(m);
    expect(await t.time('reboot', () => m.reboot())).toBe('running');
    await expectBootRun(m, EXAMPLE);
    for (const a of [ADMIN, OTHER]) await m.upstreamExec(['ip', 'addr', 'add', `${a}/24`, 'dev', 'uplink0']);
    for (const u of ['mariadb.service', 'rvd_back.service', 'rvd_front.service', 'libvirtd.socket'])
      expect(await m.systemctl(['is-active', u]), u).toBe('active');
    await expectConsolePorts();
    await expectNoDiff(m);
  });

  it('is undone by the absent document', async () => {
    if (!kvm) return;
    const a = await t.time('absent', () => m.opd(['apply', '/opt/opd/examples/ravada-server-absent.yaml']));
    expectOk(a);
    expect(await m.systemctl(['is-active', 'rvd_front.service'])).not.toBe('active');
    expect(
      (await mysql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'ravada'")).stdout.trim(),
    ).toBe('0');
    expect((await m.exec(['nft', 'list', 'table', 'inet', 'ravada'])).code).not.toBe(0);
    expect((await m.opd(['diff', STATE])).code).toBe(2);
  });
});
