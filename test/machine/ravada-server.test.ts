/**
 * examples/ravada-server.yaml exactly as shipped, on a booted Debian 12 machine
 * (test/machine/harness.ts): `admin_address` from the machine's vars file, the two passwords from
 * the document's secret files. MariaDB (Debian's unit) is installed and started by the same apply,
 * its database and user follow in the run's second stage; libvirtd through its socket. The
 * console ports answer the admin workstation and drop everyone else, from another host (the
 * upstream namespace, the other end of the machine's NIC). Apache proxies to rvd_front, which
 * hypnotoad serves (the frontend itself is a stand-in); rvd_back --add-user gets its answers on
 * its standard input; libvirt's default network (virbr0) runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, NET, startedByOpd, Timings } from './harness.js';
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
    // rvd_back --add-user asked for the password and "is admin ?" on its standard input: opd answered both
    expect((await mysql("SELECT CONCAT(name, ':', is_admin) FROM ravada.users")).stdout.trim()).toBe('admin:1');
    expect(
      (
        await mysql(`SELECT password = SHA2('${ADMIN_PASSWORD}', 256) FROM ravada.users WHERE name = 'admin'`)
      ).stdout.trim(),
      'the password from the secret file, given on stdin',
    ).toBe('1');
    expect(m.readFile('/etc/ravada.conf')).toContain(`password: "${DB_PASSWORD}"`);
    expect((await m.exec(['stat', '-c', '%a %U:%G', '/etc/ravada.conf'])).stdout.trim()).toBe('640 root:ravada');
    for (const e of m.audit()) {
      expect(JSON.stringify(e)).not.toContain(DB_PASSWORD);
      expect(JSON.stringify(e)).not.toContain(ADMIN_PASSWORD);
    }
  });

  it('serves the frontend through Apache (port 80, another host too) from hypnotoad, running as the ravada user', async () => {
    if (!kvm) return;
    expect(await m.systemctl(['is-active', 'apache2.service'])).toBe('active');
    expect(startedByOpd(m.audit(), 'apache2.service')).toBe(true);
    const page = await m.exec(['wget', '-qO-', 'http://127.0.0.1/']);
    expect(page.stdout.trim(), page.stderr).toBe('Ravada frontend (stand-in)');
    // and another host on the network gets the same page from port 80
    const js = `require('http').get({host:${JSON.stringify(NET.address)},port:80,localAddress:${JSON.stringify(OTHER)},timeout:5000},r=>{let d='';r.on('data',c=>d+=c);r.on('end',()=>console.log(d.trim()))}).on('error',e=>console.log(e.code))`;
    expect((await m.upstreamExec([process.execPath, '-e', js])).stdout.trim(), 'Apache answers the network').toBe(
      'Ravada frontend (stand-in)',
    );
    const pid = (await m.unit('rvd_front.service', ['MainPID'])).MainPID;
    const ps = (await m.exec(['ps', '-o', 'user=,args=', '-p', pid])).stdout.trim();
    expect(ps).toMatch(/^ravada\s+.*(hypnotoad|rvd_front\.pl)/);
    expect((await m.exec(['ss', '-Hltn', 'sport = :8081'])).stdout).toContain('127.0.0.1:8081');
    const mods = (await m.exec(['apache2ctl', '-M'])).stdout;
    expect(mods).toContain('proxy_http_module');
    expect(mods).toContain('proxy_wstunnel_module');
  });

  it("runs libvirt's default network (virbr0, 192.168.122.1/24, DHCP), active and autostarted", async () => {
    if (!kvm) return;
    const info = (await m.exec(['virsh', '-c', 'qemu:///system', 'net-info', 'default'])).stdout;
    expect(info).toMatch(/^Active:\s+yes$/m);
    expect(info).toMatch(/^Autostart:\s+yes$/m);
    expect(info).toMatch(/^Bridge:\s+virbr0$/m);
    expect((await m.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'virbr0'])).stdout).toContain(
      'inet 192.168.122.1/24',
    );
  });

  it("answers the console ports to the admin workstation of the vars file only (the guide's iptables rules), and Ravada's own chain opens one for a user at run time", async () => {
    if (!kvm) return;
    const nft = (await m.exec(['nft', 'list', 'table', 'inet', 'ravada'])).stdout;
    expect(nft).toContain('iifname "virbr0" ip saddr 192.168.122.0/24 udp sport 67-68 udp dport 67-68 accept');
    expect(startedByOpd(m.audit(), 'ravada-consoles.service')).toBe(true);
    const rules = (await m.exec(['iptables', '-S', 'INPUT'])).stdout;
    expect(rules).toContain(`-A INPUT -s ${ADMIN}/32 -p tcp -m tcp --dport 5900:7000 -j ACCEPT`);
    expect(rules).toContain('-A INPUT -p tcp -m tcp --dport 5900:7000 -j DROP');
    await expectConsolePorts();
    // what Ravada does when a user opens a console: its chain 'ravada', jumped to from the top of
    // INPUT, accepts that user's address on the domain's port, before the guide's drop
    const ravada = (args: string[]) => m.exec(['iptables', '-w', ...args]);
    expect((await ravada(['-N', 'ravada'])).code).toBe(0);
    expect((await ravada(['-I', 'INPUT', '1', '-j', 'ravada'])).code).toBe(0);
    expect((await ravada(['-A', 'ravada', '-s', OTHER, '-p', 'tcp', '--dport', '5901', '-j', 'ACCEPT'])).code).toBe(0);
    await m.listen(5901);
    expect(await m.reach(NET.address, 5901, OTHER), 'the user Ravada let in reaches the console port').toBe('ok');
    await ravada(['-D', 'INPUT', '-j', 'ravada']);
    await ravada(['-F', 'ravada']);
    await ravada(['-X', 'ravada']);
    expect(await m.reach(NET.address, 5901, OTHER), 'closed again when Ravada removes it').toBe('timeout');
    await m.exec(['systemctl', 'stop', 'opd-test-listen-5901.service']);
    await expectNoDiff(m);
  });

  it('comes back after a reboot: the firewall before network.target, the services, and opd diff finds nothing to do', async () => {
    if (!kvm) return;
    await enableBoot(m);
    const state = await t.time('reboot', () => m.reboot());
    expect(state, `the rebooted machine runs with nothing failed${await failedUnits(m)}`).toBe('running');
    await expectBootRun(m, EXAMPLE);
    for (const a of [ADMIN, OTHER]) await m.upstreamExec(['ip', 'addr', 'add', `${a}/24`, 'dev', 'uplink0']);
    for (const u of ['mariadb.service', 'rvd_back.service', 'rvd_front.service', 'libvirtd.socket', 'apache2.service'])
      expect(await m.systemctl(['is-active', u]), u).toBe('active');
    expect((await m.exec(['wget', '-qO-', 'http://127.0.0.1/'])).stdout.trim()).toBe('Ravada frontend (stand-in)');
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
    expect((await m.exec(['test', '-e', '/etc/apache2/conf-enabled/ravada.conf'])).code).not.toBe(0);
    expect(await m.systemctl(['is-active', 'apache2.service']), 'Apache stays, without the proxy').toBe('active');
    expect((await m.exec(['wget', '-qO-', 'http://127.0.0.1/'])).stdout, 'reloaded: its own page again').not.toContain(
      'Ravada frontend',
    );
    expect((await m.exec(['iptables', '-S', 'INPUT'])).stdout).not.toContain('5900:7000');
    expect((await m.opd(['diff', STATE])).code).toBe(2);
  });
});
