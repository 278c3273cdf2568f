/**
 * `opd daemon` (itself a unit of the namespaced systemd) restores a unit stopped by hand, with a
 * drift entry in the audit trail before the corrective start.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmp, uniq, opd } from '../helpers/opd.js';
import { auditEntries, daemonUnit, systemctl, until, type DaemonUnit } from '../helpers/daemon.js';

const target = `opd-dmn-sleep-${uniq(6)}.service`;
const targetPath = `/run/systemd/system/${target}`;

describe('opd daemon restores systemd units', () => {
  let unit: DaemonUnit;
  let audit: string;

  beforeAll(async () => {
    writeFileSync(targetPath, `[Unit]\nDescription=opd daemon test target\n[Service]\nExecStart=/bin/sleep infinity\n`);
    await systemctl(['daemon-reload']);
    const dir = tmp('opd-daemon-sd-');
    const state = join(dir, 'state.yaml');
    audit = join(dir, 'audit.jsonl');
    writeFileSync(state, `version: 1\nplugins:\n  systemd:\n    units:\n      ${target}: { active_state: active }\n`);
    // --no-dbus: daemon.test.ts owns org.opd.Reconciler1 while the files run in parallel
    unit = await daemonUnit({ state, dir, env: { OPD_AUDIT_LOG: audit }, args: ['--no-dbus', '--debounce', '100'] });
    await unit.start();
  });

  afterAll(async () => {
    await unit?.remove();
    await systemctl(['stop', target]);
    rmSync(targetPath, { force: true });
    await systemctl(['daemon-reload']);
  });

  it('starts the unit at the first reconcile', async () => {
    expect((await unit.show(['ActiveState'])).ActiveState).toBe('active');
    const r = await systemctl(['is-active', target]);
    expect(r.stdout.trim()).toBe('active');
  });

  it('restores a unit stopped by hand, with a drift entry before the corrective start', async () => {
    await systemctl(['stop', target]);
    await until(
      async () => (await systemctl(['is-active', target])).stdout.trim() === 'active',
      'the unit to be started again',
    );
    const e = await until(() => {
      const all = auditEntries(audit);
      return all.some((x) => x.type === 'run.end' && all.find((s) => s.type === 'drift' && s.run === x.run))
        ? all
        : undefined;
    }, 'the drift run to end');
    const drift = e.find((x) => x.type === 'drift')!;
    expect(drift.address).toBe(`systemd/units/${target}`);
    expect(e.find((x) => x.type === 'run.start' && x.run === drift.run)?.trigger).toBe('drift');
  });

  it('stops cleanly and leaves an intact audit trail', async () => {
    await unit.stop();
    expect((await unit.show(['Result'])).Result).toBe('success');
    const v = await opd(['audit', 'verify'], { env: { OPD_AUDIT_LOG: audit } });
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
