/**
 * examples/hyper2kvm-daemon.yaml end to end: user, group, directories, configs, the template
 * unit with its hardening, the vsphere and aws instances and the target really running under
 * the namespaced systemd; then the absent document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { EXAMPLES, exists, opdIn, systemctl } from '../helpers/examples.js';

const opd = (args: string[], o: { env: Record<string, string> }) => opdIn(undefined, args, o.env);

const dir = tmp('opd-e2e-h2k-');
// packages through the default backend (auto)
const env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };
const DOC = join(EXAMPLES, 'hyper2kvm-daemon.yaml');
const ABSENT = join(EXAMPLES, 'hyper2kvm-daemon-absent.yaml');

describe('examples/hyper2kvm-daemon.yaml', () => {
  beforeAll(async () => {
    await ensureSystemd();
  });
  afterAll(async () => {
    await opd(['apply', ABSENT], { env });
  });

  it('validates', async () => {
    const r = await opd(['validate', DOC], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await opd(['validate', ABSENT], { env })).code).toBe(0);
  });

  it('goes through the default packages backend, PackageKit on the namespaced systemd (auto)', async () => {
    const r = await opd(['doctor'], { env });
    const line = r.stdout.split('\n').find((l) => l.includes('packages: backend'));
    expect(line, r.stdout + r.stderr).toMatch(/packagekit: .*org\.freedesktop\.PackageKit answers/);
  });

  it('has changes pending on a fresh host (diff exits 2)', async () => {
    const r = await opd(['diff', DOC], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('systemd/units/hyper2kvm@vsphere.service');
  });

  it('converges with one apply; a second apply exits 0 with no changes', async () => {
    const a = await opd(['apply', DOC], { env });
    expect(a.stdout).not.toMatch(/^FAILED/m);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const again = await opd(['apply', DOC], { env });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('no changes: the host matches the document');
    const d = await opd(['diff', DOC], { env });
    expect(d.stdout + d.stderr).toBe(d.stdout);
    expect(d.code).toBe(0);
  });

  it('left the daemon user, its directories and running instances as the package would', async () => {
    const groups = String((await execa('id', ['-nG', 'hyper2kvm'])).stdout).split(/\s+/);
    expect(groups).toEqual(expect.arrayContaining(['hyper2kvm', 'kvm', 'libvirt']));
    for (const d of [
      '/var/lib/hyper2kvm/queue',
      '/var/lib/hyper2kvm/output',
      '/var/log/hyper2kvm',
      '/var/cache/hyper2kvm',
    ]) {
      expect(statSync(d).isDirectory()).toBe(true);
      expect(statSync(d).mode & 0o777).toBe(0o750);
    }
    expect(statSync('/etc/hyper2kvm/hyper2kvm-vsphere.conf').mode & 0o777).toBe(0o640);
    for (const u of ['hyper2kvm.service', 'hyper2kvm@vsphere.service', 'hyper2kvm@aws.service', 'hyper2kvm.target']) {
      expect(await systemctl(['is-active', u])).toBe('active');
    }
    expect(await systemctl(['is-enabled', 'hyper2kvm@vsphere.service'])).toBe('enabled');
    expect(await systemctl(['show', '-p', 'User', '--value', 'hyper2kvm@aws.service'])).toBe('hyper2kvm');
    expect(await systemctl(['show', '-p', 'ProtectSystem', '--value', 'hyper2kvm@aws.service'])).toBe('strict');
    expect(await systemctl(['show', '-p', 'ExecStart', '--value', 'hyper2kvm.service'])).toContain(
      '--config /etc/hyper2kvm/hyper2kvm.conf',
    );
  });

  it('restarts hyper2kvm.service when opd changes hyper2kvm.conf (refresh_on), and only then', async () => {
    const pid = await systemctl(['show', '-p', 'MainPID', '--value', 'hyper2kvm.service']);
    writeFileSync('/etc/hyper2kvm/hyper2kvm.conf', '# edited by hand\n');
    const a = await opd(['apply', DOC], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(a.stdout).toMatch(
      /^ok\s+~ exec\/commands\/restart-hyper2kvm-on-config: refresh systemctl try-restart hyper2kvm.service/m,
    );
    expect(await systemctl(['is-active', 'hyper2kvm.service'])).toBe('active');
    expect(await systemctl(['show', '-p', 'MainPID', '--value', 'hyper2kvm.service'])).not.toBe(pid);
    const again = await opd(['apply', DOC], { env });
    expect(again.stdout).toContain('no changes');
  });

  it('keeps an intact audit trail', async () => {
    const r = await opd(['audit', 'verify'], { env });
    expect(r.code).toBe(0);
  });

  it('is undone by the absent document', async () => {
    const a = await opd(['apply', ABSENT], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await systemctl(['is-active', 'hyper2kvm@vsphere.service'])).not.toBe('active');
    expect(await systemctl(['is-active', 'hyper2kvm.service'])).not.toBe('active');
    expect(existsSync('/etc/systemd/system/hyper2kvm@.service')).toBe(false);
    expect(existsSync('/etc/hyper2kvm')).toBe(false);
    expect(existsSync('/var/lib/hyper2kvm')).toBe(false);
    expect(existsSync('/usr/local/bin/hyper2kvm')).toBe(false);
    expect(await exists('getent', ['passwd', 'hyper2kvm'])).toBe(false);
    expect(await exists('getent', ['group', 'hyper2kvm'])).toBe(false);
    expect((await opd(['diff', ABSENT], { env })).code).toBe(0);
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
