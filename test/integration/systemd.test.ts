/**
 * The systemd plugin against the real (namespaced) systemd: units named opd-test-<uniq>-*,
 * running /bin/sleep infinity, cleaned up afterwards.
 */
import { expectOutput } from '../helpers/output-schema.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { doc, opd, tmp, uniq } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';

const U = `opd-test-${uniq(5)}`;
const A = `${U}-a.service`;
const B = `${U}-b.service`;
const F = `${U}-fail.service`;
const V = `${U}-vendor.service`;
const T = `${U}-t@.service`;
const TI = `${U}-t@one.service`;
const S = `${U}-static.service`;
const ALL = [A, B, F, V, T, TI, S];
const ETC = '/etc/systemd/system';
const VENDOR_DIR = '/usr/local/lib/systemd/system';
const dir = tmp('opd-sd-');
const env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };

const sysenv = { SYSTEMCTL_FORCE_BUS: '1' };
async function systemctl(args: string[]): Promise<string> {
  return (await execa('systemctl', args, { env: sysenv, reject: false })).stdout;
}

async function props(unit: string): Promise<Record<string, string>> {
  const out = await systemctl([
    'show',
    unit,
    '-p',
    'ActiveState',
    '-p',
    'SubState',
    '-p',
    'MainPID',
    '-p',
    'LoadState',
    '-p',
    'Environment',
  ]);
  return Object.fromEntries(
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

async function isEnabled(unit: string): Promise<string> {
  return (await execa('systemctl', ['is-enabled', unit], { env: sysenv, reject: false })).stdout.trim();
}

/** Everything a diff could touch: the units' states and every file of ours under the unit dirs. */
async function dump(): Promise<string> {
  const states = await Promise.all(
    ALL.filter((u) => u !== T).map(async (u) => [u, await props(u), await isEnabled(u)]),
  );
  const files: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.includes(U))
        files.push(`${p} ${e.isSymbolicLink() ? 'link' : createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(ETC);
  walk(VENDOR_DIR);
  return JSON.stringify({ states, files: files.sort() });
}

const sleeper = (desc: string, extra = '') =>
  `[Unit]\nDescription=${desc}\n[Service]\nExecStart=/bin/sleep infinity\n${extra}[Install]\nWantedBy=multi-user.target\n`;

function yamlDoc(units: Record<string, unknown>): string {
  return doc(JSON.stringify({ version: 1, plugins: { systemd: { units } } }), dir, `state-${uniq()}.json`);
}

async function apply(file: string, extra: string[] = []) {
  return opd(['apply', file, ...extra], { env });
}

async function expectConverged(file: string) {
  const again = await apply(file);
  expect(again.stdout + again.stderr).toContain('no changes');
  expect(again.code).toBe(0);
  const d = await opd(['diff', file], { env });
  expect(d.code).toBe(0);
}

const reloads = (stderr: string) => stderr.split('\n').filter((l) => l.includes('systemd: Manager.Reload')).length;

describe('systemd plugin (real systemd over D-Bus)', () => {
  beforeAll(async () => {
    await ensureSystemd();
  });

  afterAll(async () => {
    const absent = Object.fromEntries(ALL.map((u) => [u, { state: 'absent' }]));
    await apply(yamlDoc(absent));
    rmSync(join(VENDOR_DIR, V), { force: true });
    for (const d of [ETC, join(ETC, 'multi-user.target.wants'), join(ETC, '.opd-managed')])
      if (existsSync(d))
        for (const f of readdirSync(d)) if (f.includes(U)) rmSync(join(d, f), { recursive: true, force: true });
    await systemctl(['daemon-reload']);
    await systemctl(['reset-failed', `${U}-*`]);
  });

  it('creates a unit from unit_file, enables and starts it, then reports zero changes', async () => {
    const f = yamlDoc({
      [A]: { enabled: true, active_state: 'active', unit_file: sleeper('a v1') },
      [B]: { enabled: true, active_state: 'active', unit_file: sleeper('b v1') },
    });
    const before = await dump();
    const d = await opd(['diff', f], { env });
    expect(d.code).toBe(2);
    expect(await dump()).toBe(before);
    const r = await apply(f, ['--log-level', 'info']);
    expect(r.stderr + r.stdout).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    expect(reloads(r.stderr)).toBe(1);
    expect((await props(A)).ActiveState).toBe('active');
    expect(await isEnabled(A)).toBe('enabled');
    expect(readFileSync(join(ETC, A), 'utf8')).toBe(sleeper('a v1'));
    expect(existsSync(join(ETC, 'multi-user.target.wants', A))).toBe(true);
    await expectConverged(f);
  });

  it('restarts running units once each after exactly one Reload when their unit files change', async () => {
    const pidA = (await props(A)).MainPID;
    const pidB = (await props(B)).MainPID;
    const f = yamlDoc({
      [A]: { enabled: true, active_state: 'active', unit_file: sleeper('a v2') },
      [B]: { enabled: true, active_state: 'active', unit_file: sleeper('b v2') },
    });
    const before = await dump();
    const d = await opd(['diff', f, '-o', 'json'], { env });
    expect(d.code).toBe(2);
    expect(await dump()).toBe(before);
    const plan = JSON.parse(d.stdout) as { changes: { address: string; action: string; reason?: string }[] };
    expect(plan.changes.filter((c) => c.action === 'restart').map((c) => [c.address, c.reason])).toEqual([
      [`systemd/units/${A}`, 'unit file changed'],
      [`systemd/units/${B}`, 'unit file changed'],
    ]);
    const r = await apply(f, ['--log-level', 'info']);
    expect(r.code).toBe(0);
    expect(reloads(r.stderr)).toBe(1);
    expect(r.stdout).toContain(`systemd/units/${A}: restart (unit file changed)`);
    const a = await props(A);
    expect(a.ActiveState).toBe('active');
    expect(a.MainPID).not.toBe(pidA);
    expect((await props(B)).MainPID).not.toBe(pidB);
    await expectConverged(f);
    // the audit trail has one entry per change
    const entries = readFileSync(env.OPD_AUDIT_LOG, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; address?: string; action?: string });
    expect(
      entries.filter((e) => e.type === 'change' && e.address === `systemd/units/${A}` && e.action === 'restart').length,
    ).toBe(1);
  });

  it('restarts a unit when a drop-in is added, and removes a drop-in marked absent', async () => {
    const pid = (await props(A)).MainPID;
    const f = yamlDoc({
      [A]: { active_state: 'active', dropins: { '10-env.conf': '[Service]\nEnvironment=OPD_TEST=1\n' } },
    });
    const r = await apply(f);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('restart (drop-in 10-env.conf changed)');
    const p = await props(A);
    expect(p.MainPID).not.toBe(pid);
    expect(p.Environment).toContain('OPD_TEST=1');
    expect(readFileSync(join(ETC, `${A}.d/10-env.conf`), 'utf8')).toContain('OPD_TEST=1');
    await expectConverged(f);
    const g = yamlDoc({ [A]: { active_state: 'active', dropins: { '10-env.conf': { state: 'absent' } } } });
    const r2 = await apply(g);
    expect(r2.code).toBe(0);
    expect(existsSync(join(ETC, `${A}.d/10-env.conf`))).toBe(false);
    expect((await props(A)).Environment).not.toContain('OPD_TEST=1');
    await expectConverged(g);
  });

  it('stops and disables a unit, and opd diff on that pending change touches nothing', async () => {
    const f = yamlDoc({ [B]: { enabled: false, active_state: 'inactive' } });
    const before = await dump();
    const d = await opd(['diff', f], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toContain(`systemd/units/${B}/enabled: disable`);
    expect(await dump()).toBe(before);
    const r = await apply(f);
    expect(r.code).toBe(0);
    expect((await props(B)).ActiveState).toBe('inactive');
    expect(await isEnabled(B)).toBe('disabled');
    await expectConverged(f);
  });

  it('masks a packaged unit and stops it, then unmasks and starts it again', async () => {
    mkdirSync(VENDOR_DIR, { recursive: true });
    writeFileSync(join(VENDOR_DIR, V), sleeper('vendor'));
    const start = yamlDoc({ [V]: { active_state: 'active' } });
    expect((await apply(start)).code).toBe(0);
    expect((await props(V)).ActiveState).toBe('active');
    const mask = yamlDoc({ [V]: { masked: true } });
    const r = await apply(mask);
    expect(r.stdout).toContain('(masked)');
    expect(r.code).toBe(0);
    expect(await isEnabled(V)).toBe('masked');
    expect((await props(V)).ActiveState).toBe('inactive');
    await expectConverged(mask);
    const unmask = yamlDoc({ [V]: { masked: false, active_state: 'active' } });
    expect((await apply(unmask)).code).toBe(0);
    expect((await props(V)).ActiveState).toBe('active');
    await expectConverged(unmask);
    // state: absent stops it but never deletes a file opd did not write
    const gone = yamlDoc({ [V]: { state: 'absent' } });
    expect((await apply(gone)).code).toBe(0);
    expect((await props(V)).ActiveState).toBe('inactive');
    expect(existsSync(join(VENDOR_DIR, V))).toBe(true);
    await expectConverged(gone);
  });

  it('runs a template instance and restarts it when the template changes', async () => {
    const tpl = (v: string) =>
      `[Unit]\nDescription=template ${v} %i\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n`;
    const f = yamlDoc({ [T]: { unit_file: tpl('v1') }, [TI]: { enabled: true, active_state: 'active' } });
    const r = await apply(f);
    expect(r.stdout + r.stderr).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    expect((await props(TI)).ActiveState).toBe('active');
    expect(await isEnabled(TI)).toBe('enabled');
    await expectConverged(f);
    const pid = (await props(TI)).MainPID;
    const g = yamlDoc({ [T]: { unit_file: tpl('v2') }, [TI]: { enabled: true, active_state: 'active' } });
    const r2 = await apply(g, ['--log-level', 'info']);
    expect(r2.code).toBe(0);
    expect(reloads(r2.stderr)).toBe(1);
    expect(r2.stdout).toContain('restart running instances (unit file changed)');
    expect((await props(TI)).MainPID).not.toBe(pid);
    await expectConverged(g);
  });

  it('fails with exit 1 and the journal tail when a unit fails to start', async () => {
    const f = yamlDoc({
      [F]: {
        active_state: 'active',
        unit_file: `[Service]\nType=oneshot\nExecStartPre=/bin/echo opd-boom-${U}\nExecStart=/bin/false\n`,
      },
    });
    const r = await apply(f);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`start of ${F} failed (job result: failed)`);
    expect(r.stdout).toContain(`opd-boom-${U}`);
    const j = await apply(f, ['-o', 'json']);
    expect(j.code).toBe(1);
  });

  it('says that a unit without an [Install] section cannot be enabled', async () => {
    const f = yamlDoc({ [S]: { enabled: true, unit_file: '[Service]\nExecStart=/bin/true\n' } });
    const r = await apply(f);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${S} cannot be enabled: its unit file has no [Install] section`);
  });

  it('removes units marked absent with the files opd wrote, and only those', async () => {
    const f = yamlDoc(Object.fromEntries([A, B, F, T, TI, S].map((u) => [u, { state: 'absent' }])));
    const before = await dump();
    expect((await opd(['diff', f], { env })).code).toBe(2);
    expect(await dump()).toBe(before);
    const r = await apply(f);
    expect(r.stdout + r.stderr).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    for (const u of [A, B, F, T, S]) expect(existsSync(join(ETC, u))).toBe(false);
    expect(existsSync(join(ETC, `${A}.d`))).toBe(false);
    expect(existsSync(join(ETC, 'multi-user.target.wants', TI))).toBe(false);
    expect(existsSync(join(ETC, '.opd-managed', `${A}.json`))).toBe(false);
    expect((await props(A)).LoadState).toBe('not-found');
    expect((await props(F)).ActiveState).toBe('inactive');
    await expectConverged(f);
  });

  it('prints managed units with opd show as a document that applies with zero changes', async () => {
    const f = yamlDoc({ [A]: { enabled: true, active_state: 'active', unit_file: sleeper('show') } });
    expect((await apply(f)).code).toBe(0);
    const s = await opd(['show', '--plugin', 'systemd', '-o', 'json'], { env });
    expect(s.code).toBe(0);
    const shown = expectOutput<{ document: { plugins: { systemd: { units: Record<string, unknown> } } } }>(
      'show',
      s.stdout,
    ).document;
    expect(shown.plugins.systemd.units[A]).toEqual({
      enabled: true,
      active_state: 'active',
      unit_file: sleeper('show'),
    });
    await expectConverged(
      doc(
        JSON.stringify({ version: 1, plugins: { systemd: { units: { [A]: shown.plugins.systemd.units[A] } } } }),
        dir,
        'shown.json',
      ),
    );
    const all = await opd(['show', '--plugin', 'systemd', '--all'], { env });
    expect(all.code).toBe(0);
    const parsed = parse(all.stdout) as { plugins: { systemd: { units: Record<string, unknown> } } };
    expect(parsed.plugins.systemd.units['dbus.service']).toMatchObject({ active_state: 'active' });
    const v = await opd(['validate', doc(all.stdout, dir, 'all.yaml')], { env });
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    expect((await apply(yamlDoc({ [A]: { state: 'absent' } }))).code).toBe(0);
  });

  it('says plainly that systemd is unreachable and exits 69 when there is no system bus', async () => {
    const f = yamlDoc({ [A]: { active_state: 'active' } });
    const r = await opd(['diff', f], { env: { ...env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${dir}/no-such-bus` } });
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/systemd is not reachable over D-Bus|no D-Bus system bus/);
    const dr = await opd(['doctor', '--plugin', 'systemd'], {
      env: { ...env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${dir}/no-such-bus` },
    });
    expect(dr.code).toBe(69);
    expect(dr.stdout).toContain('FAIL systemd: manager');
    const ok = await opd(['doctor', '--plugin', 'systemd'], { env });
    expect(ok.stdout).toMatch(/ok +systemd: manager: systemd \d+/);
  });

  it('reports drift through watch() when a named unit is stopped behind its back', async () => {
    const f = yamlDoc({ [A]: { active_state: 'active', unit_file: sleeper('watch') } });
    expect((await apply(f)).code).toBe(0);
    const { default: plugin } = await import('../../src/plugins/systemd/index.js');
    const { closeBuses } = await import('../../src/dbus.js');
    const { pino } = await import('pino');
    const seen: string[] = [];
    let resolve!: () => void;
    const drifted = new Promise<void>((r) => (resolve = r));
    const w = await plugin.watch!(
      { settings: {}, log: pino({ level: 'silent' }), desired: { units: { [A]: { active_state: 'active' } } } },
      (a) => {
        seen.push(a ?? '*');
        if (a === `systemd/units/${A}`) resolve();
      },
    );
    try {
      await systemctl(['stop', A]);
      await drifted;
      expect(seen).toContain(`systemd/units/${A}`);
    } finally {
      await w.dispose();
      await closeBuses();
    }
    expect((await apply(yamlDoc({ [A]: { state: 'absent' } }))).code).toBe(0);
  });

  it('keeps an audit trail that verifies', async () => {
    const r = await opd(['audit', 'verify'], { env });
    expect(r.stdout + r.stderr).toContain('chain intact');
    expect(r.code).toBe(0);
  });
});
