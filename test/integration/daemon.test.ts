/**
 * `opd daemon` as a unit of the real namespaced systemd (Type=notify, the shipped unit file),
 * against a private ovsdb-server; its D-Bus API from separate clients (busctl, also as nobody).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { opd, tmp, uniq } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';
import {
  auditEntries,
  busctl,
  daemonCall,
  daemonUnit,
  installBusPolicy,
  systemctl,
  until,
  type DaemonUnit,
} from '../helpers/daemon.js';

const id = uniq(4);
const BR = `dmn${id}`;
const P1 = `dp1${id}`;
const P2 = `dp2${id}`;
const P3 = `dp3${id}`;

const stateDoc = (ports: string[]) =>
  `version: 1\nplugins:\n  ovs:\n    bridges:\n      ${BR}:\n        ports:\n${ports.map((p) => `          ${p}: { type: internal }\n`).join('')}`;

describe('opd daemon under systemd', () => {
  let ovs: OvsSandbox;
  let unit: DaemonUnit;
  let dir: string;
  let state: string;
  let audit: string;
  const env = () => ({ OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit });
  const ports = async () => (await ovs.vsctl(['list-ports', BR])).split('\n').filter(Boolean).sort();
  const status = async () =>
    (await daemonCall('Status')) as {
      state: string;
      document_error: unknown;
      last_run: { reasons: string[]; status: string } | null;
      runs: number;
      resources: { address: string; state: string }[];
    };

  beforeAll(async () => {
    ovs = await startOvs();
    dir = tmp('opd-daemon-');
    state = join(dir, 'state.yaml');
    audit = join(dir, 'audit.jsonl');
    writeFileSync(state, stateDoc([P1, P2]));
    await installBusPolicy();
    unit = await daemonUnit({
      state,
      dir,
      env: { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit },
      args: ['--debounce', '100', '--backoff', '1'],
    });
    await unit.start();
  });

  afterAll(async () => {
    await unit?.remove();
    await ovs?.stop();
  });

  it('reaches READY after the first reconcile (the Type=notify unit is active) with a converged STATUS', async () => {
    const p = await unit.show(['ActiveState', 'SubState', 'StatusText', 'Type']);
    expect(p.Type).toBe('notify');
    expect(p.ActiveState).toBe('active');
    expect(p.StatusText).toMatch(/^converged, 1 resource, last run \d+s ago/);
    expect(await ports()).toEqual([P1, P2]);
    const e = auditEntries(audit);
    expect(e.find((x) => x.type === 'run.start')?.trigger).toBe('daemon:start');
  });

  it('restores an OVS port deleted by hand and writes a drift entry before the corrective change', async () => {
    await ovs.vsctl(['--no-wait', 'del-port', BR, P1]);
    await until(async () => (await ports()).includes(P1), 'the port to come back');
    const e = await until(() => {
      const all = auditEntries(audit);
      return all.some((x) => x.type === 'run.end' && all.find((s) => s.type === 'drift' && s.run === x.run))
        ? all
        : undefined;
    }, 'the drift run to end');
    const drift = e.find((x) => x.type === 'drift')!;
    expect(drift.address).toBe(`ovs/bridges/${BR}`);
    expect(drift.before).not.toBe(drift.after);
    expect(JSON.stringify(drift.ops)).toContain(P1);
    const run = e.filter((x) => x.run === drift.run);
    // the corrective change is announced (write-ahead intent) before it is made
    expect(run.map((x) => x.type)).toEqual(['run.start', 'drift', 'intent', 'change', 'run.end']);
    expect(run[0].trigger).toBe('drift');
    expect(run[4].status).toBe('ok');
  });

  it('coalesces a burst of events (three tables changing at once) into one corrective run', async () => {
    const before = auditEntries(audit).filter((x) => x.type === 'run.start').length;
    // one transaction: Bridge.ports, two Port rows and two Interface rows change → events on all three monitors
    await ovs.vsctl(['--no-wait', 'del-port', BR, P1, '--', 'del-port', BR, P2]);
    await until(async () => (await ports()).length === 2, 'both ports to come back');
    // an explicit Apply() is queued behind any run the burst may still have pending (debounced),
    // so once it returns every run the burst caused has ended; it changes nothing itself
    const a = (await daemonCall('Apply')) as { status: string };
    expect(a.status).toMatch(/^(ok|noop)$/);
    const starts = auditEntries(audit)
      .filter((x) => x.type === 'run.start')
      .slice(before);
    expect(starts.map((x) => x.trigger)).toEqual(['drift']);
    expect(
      auditEntries(audit)
        .filter((x) => x.type === 'change' && x.run === starts[0].run)
        .map((x) => x.address)
        .sort(),
    ).toEqual([`ovs/bridges/${BR}/ports/${P1}`, `ovs/bridges/${BR}/ports/${P2}`]);
  });

  it('rejects an invalid edit of the state file and keeps running with the last good document', async () => {
    writeFileSync(state, stateDoc([P1, P2]).replace(/internal/g, 'no-such-type'));
    const s = await until(async () => {
      const x = await status();
      return x.document_error ? x : undefined;
    }, 'the rejected document in the status');
    expect(JSON.stringify(s.document_error)).toContain('no-such-type');
    expect((await unit.show(['ActiveState'])).ActiveState).toBe('active');
    // the last good document is still in force: drift is still corrected
    await ovs.vsctl(['--no-wait', 'del-port', BR, P2]);
    await until(async () => (await ports()).includes(P2), 'the port to come back under the last good document');
    await until(
      async () => (await unit.show(['StatusText'])).StatusText.includes('state file rejected'),
      'the STATUS line to name the rejected edit',
    );
  });

  it('applies a valid edit of the state file without being told', async () => {
    writeFileSync(state, stateDoc([P1, P2, P3]));
    await until(async () => (await ports()).includes(P3), 'the new port from the edited document');
    const s = await status();
    expect(s.document_error).toBeNull();
  });

  it('reloads the document on SIGHUP (systemctl reload)', async () => {
    const before = (await status()).runs;
    const r = await systemctl(['reload', unit.name]);
    expect(r.code, r.stderr).toBe(0);
    const s = await until(async () => {
      const x = await status();
      return x.runs > before && x.last_run?.reasons.includes('sighup') ? x : undefined;
    }, 'a run triggered by SIGHUP');
    expect(s.state).toBe('converged');
  });

  it('answers Status, Diff and Apply on org.opd.Reconciler1 to root', async () => {
    const s = await status();
    expect(s.resources).toEqual([expect.objectContaining({ address: `ovs/bridges/${BR}`, state: 'converged' })]);
    const d = (await daemonCall('Diff')) as { changes: unknown[] };
    expect(d.changes).toEqual([]);
    await ovs.vsctl(['--no-wait', 'del-port', BR, P3]);
    const a = (await daemonCall('Apply')) as { status: string; reasons: string[] };
    expect(a.reasons).toContain('dbus:Apply');
    expect(await ports()).toContain(P3);
    const intro = await busctl([
      '--system',
      'introspect',
      'org.opd.Reconciler1',
      '/org/opd/Reconciler1',
      'org.opd.Reconciler1',
    ]);
    expect(intro.stdout).toMatch(/\.DriftDetected\s+signal\s+s/);
    expect(intro.stdout).toMatch(/\.RunFinished\s+signal\s+s/);
  });

  it('emits DriftDetected and RunFinished signals', async () => {
    const mon = execa(
      'busctl',
      ['--system', 'monitor', '--json=short', '--match', "type='signal',interface='org.opd.Reconciler1'"],
      { reject: false, buffer: false },
    );
    let out = '';
    mon.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    try {
      // the monitor is subscribed once it sees a probe signal of the test's own
      await until(
        async () => {
          await busctl(['--system', 'emit', '/org/opd/Test', 'org.opd.Reconciler1', 'Probe']);
          return out.includes('"Probe"');
        },
        'busctl monitor to be subscribed',
        30_000,
        200,
      );
      await ovs.vsctl(['--no-wait', 'del-port', BR, P3]);
      await until(async () => (await ports()).includes(P3), 'the port to come back');
      await until(
        () => out.includes('"RunFinished"') && out.includes('"DriftDetected"'),
        'the DriftDetected and RunFinished signals',
      );
    } finally {
      mon.kill('SIGTERM');
      await mon;
    }
    const sigs = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { member: string; payload: { data: string[] } });
    const drift = sigs.find((x) => x.member === 'DriftDetected');
    expect(JSON.parse(drift!.payload.data[0]).resources).toEqual([`ovs/bridges/${BR}`]);
    const fin = sigs.find((x) => x.member === 'RunFinished');
    expect(JSON.parse(fin!.payload.data[0])).toMatchObject({ status: 'ok', trigger: 'drift' });
  });

  it('keeps op-dbus clients working: org.opdbus QueryState and ApplyState', async () => {
    const q = (await daemonCall('QueryState', {
      dest: 'org.opdbus',
      path: '/org/opdbus/state',
      iface: 'org.opdbus.StateManager',
    })) as {
      plugins: { ovs: { bridges: Record<string, { ports: Record<string, unknown> }> } };
    };
    expect(Object.keys(q.plugins.ovs.bridges[BR].ports).sort()).toEqual([P1, P2, P3]);
    const extra = `dx${id}`;
    const doc = JSON.stringify({
      version: 1,
      plugins: { ovs: { bridges: { [`${BR}x`]: { ports: { [extra]: { type: 'internal' } } } } } },
    });
    const a = (await daemonCall('ApplyState', {
      dest: 'org.opdbus',
      path: '/org/opdbus/state',
      iface: 'org.opdbus.StateManager',
      args: ['s', doc],
    })) as { status: string };
    expect(a.status).toBe('ok');
    expect(await ovs.vsctl(['list-ports', `${BR}x`])).toContain(extra);
    expect(auditEntries(audit).some((x) => x.type === 'run.start' && x.trigger === 'dbus:ApplyState')).toBe(true);
  });

  it('refuses Apply and ApplyState from a non-root peer but lets it read the status', async () => {
    const apply = await busctl(
      ['--system', 'call', 'org.opd.Reconciler1', '/org/opd/Reconciler1', 'org.opd.Reconciler1', 'Apply'],
      { as: 'nobody' },
    );
    expect(apply.code).not.toBe(0);
    expect(apply.stderr).toMatch(/Access denied/i);
    const applyState = await busctl(
      ['--system', 'call', 'org.opdbus', '/org/opdbus/state', 'org.opdbus.StateManager', 'ApplyState', 's', '{}'],
      { as: 'nobody' },
    );
    expect(applyState.code).not.toBe(0);
    expect(applyState.stderr).toMatch(/Access denied/i);
    const s = (await daemonCall('Status', { as: 'nobody' })) as { state: string };
    expect(s.state).toBe('converged');
  });

  it('prints the status with `opd status` (exit 0 when converged)', async () => {
    const r = await opd(['status'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('converged');
    expect(r.stdout).toContain(`ok      ovs/bridges/${BR}`);
    const j = await opd(['status', '-o', 'json'], { env: env() });
    expect(JSON.parse(j.stdout).state).toBe('converged');
  });

  it('stops cleanly on SIGTERM (exit 0) and leaves an intact audit trail', async () => {
    await unit.stop();
    const p = await unit.show(['ActiveState', 'Result', 'ExecMainStatus']);
    expect(p.ActiveState).toBe('inactive');
    expect(p.Result).toBe('success');
    expect(p.ExecMainStatus).toBe('0');
    const v = await opd(['audit', 'verify'], { env: env() });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const after = await opd(['status'], { env: env() });
    expect(after.code).toBe(69);
  });
});

describe('opd daemon with a failing resource', () => {
  let ovs: OvsSandbox;
  let unit: DaemonUnit;
  let audit: string;
  const good = `dg${id}`;
  const bad = `db${id}`;
  const status = async () =>
    (await daemonCall('Status')) as {
      state: string;
      failing: { address: string; error: string; failures: number; next_attempt_at: string }[];
      resources: { address: string; state: string }[];
    };

  beforeAll(async () => {
    // with ovs-vswitchd: a port on a device that does not exist is rejected (Interface.error)
    ovs = await startOvs({ vswitchd: true });
    const dir = tmp('opd-daemon-f-');
    const state = join(dir, 'state.yaml');
    audit = join(dir, 'audit.jsonl');
    writeFileSync(
      state,
      `version: 1\nplugins:\n  ovs:\n    bridges:\n      ${good}: { datapath_type: netdev, ports: { gp${id}: { type: internal } } }\n      ${bad}: { datapath_type: netdev, ports: { nodev${id}: {} } }\n`,
    );
    await installBusPolicy();
    unit = await daemonUnit({
      state,
      dir,
      env: { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit },
      args: ['--debounce', '100', '--backoff', '1', '--backoff-cap', '2'],
    });
    await unit.start();
  });

  afterAll(async () => {
    await unit?.remove();
    await ovs?.stop();
  });

  it('still becomes READY, converges the other resources and says which one fails', async () => {
    expect((await unit.show(['ActiveState'])).ActiveState).toBe('active');
    const s = await status();
    expect(s.state).toBe('failing');
    expect(s.resources).toEqual([
      expect.objectContaining({ address: `ovs/bridges/${bad}`, state: 'failing' }),
      expect.objectContaining({ address: `ovs/bridges/${good}`, state: 'converged' }),
    ]);
    expect(s.failing[0].error).toContain('No such device');
    expect(s.failing[0].next_attempt_at).toEqual(expect.any(String));
    expect((await unit.show(['StatusText'])).StatusText).toMatch(/^1 resource failing \(ovs\/bridges\/db/);
    const r = await opd(['status'], { env: { OPD_AUDIT_LOG: audit } });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`FAILING ovs/bridges/${bad}`);
  });

  it('keeps retrying the failing resource with backoff, never giving up', async () => {
    await until(async () => (await status()).failing[0]?.failures >= 3, 'three attempts (backoff 1 s, 2 s)', 20_000);
    expect((await unit.show(['ActiveState'])).ActiveState).toBe('active');
  });

  it('repairs drift on the other resource while one is failing', async () => {
    await ovs.vsctl(['--no-wait', 'del-port', good, `gp${id}`]);
    await until(
      async () => (await ovs.vsctl(['list-ports', good])).includes(`gp${id}`),
      'the port on the good bridge to come back',
    );
    await until(
      () => auditEntries(audit).some((x) => x.type === 'drift' && x.address === `ovs/bridges/${good}`),
      'the drift entry',
    );
  });

  it('stops cleanly with a failing resource and leaves an intact audit trail', async () => {
    await unit.stop();
    expect((await unit.show(['Result'])).Result).toBe('success');
    const v = await opd(['audit', 'verify'], { env: { OPD_AUDIT_LOG: audit } });
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
