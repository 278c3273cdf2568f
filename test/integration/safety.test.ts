/**
 * Safe changes on remote hosts, against real backends: saved plans (private OVS), a down
 * backend degrading the plan (a system bus address where no bus listens: what a host without
 * one looks like to opd), and confirm-or-revert on a network namespace reached over a veth
 * (the test's own "SSH path").
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, doc, opd, tmp, uniq } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { auditEntries, until } from '../helpers/daemon.js';
import { expectOutput } from '../helpers/output-schema.js';

describe('saved plans and degraded backends (private OVS)', () => {
  let ovs: OvsSandbox;
  let dir: string;
  const id = uniq(4);
  const BR = `sfb${id}`;
  const P = `sfp${id}`;
  const env = () => ({ OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(dir, 'audit.jsonl') });

  beforeAll(async () => {
    ovs = await startOvs();
    dir = tmp('opd-safety-');
  });
  afterAll(async () => {
    await ovs?.stop();
  });

  it('refuses a saved plan with exit 3 naming the resource changed by hand since, and applies nothing', async () => {
    const f = doc(
      `version: 1\nplugins:\n  ovs:\n    bridges:\n      ${BR}: { ports: { ${P}: { type: internal, tag: 10 } } }\n`,
      dir,
      'a.yaml',
    );
    expect((await opd(['apply', f], { env: env() })).code).toBe(0);
    writeFileSync(f, readFileSync(f, 'utf8').replace('tag: 10', 'tag: 20'));
    const plan = join(dir, 'plan.json');
    const d = await opd(['diff', f, '--out', plan], { env: env() });
    expect(d.code, d.stderr).toBe(2);
    expect(JSON.parse(readFileSync(plan, 'utf8')).resources[`ovs/bridges/${BR}`]).toMatch(/^[0-9a-f]{16,}/);
    await ovs.vsctl(['--no-wait', 'set', 'port', P, 'tag=30']);
    const before = await ovs.dump();
    const r = await opd(['apply', plan], { env: env() });
    expect(r.code, r.stderr).toBe(3);
    // a stale plan names each resource and how it changed (the port's tag is under the bridge's ports)
    expect(r.stderr).toContain(
      `1 resource changed since the plan was made: ovs/bridges/${BR} (ports changed on the host)`,
    );
    expect(await ovs.dump()).toBe(before);
  });

  it('refuses a saved plan whose document changed since', async () => {
    const f = join(dir, 'a.yaml');
    const plan = join(dir, 'plan.json');
    expect((await opd(['diff', f, '--out', plan], { env: env() })).code).toBe(2);
    writeFileSync(f, readFileSync(f, 'utf8') + '# edited\n');
    const r = await opd(['apply', plan], { env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('changed since the plan was made');
  });

  it('shows a saved plan as opd diff does, applies it unchanged, converges, and records its hash in the audit trail', async () => {
    const f = join(dir, 'a.yaml');
    const plan = join(dir, 'plan.json');
    const d = await opd(['diff', f, '--out', plan], { env: env() });
    expect(d.code).toBe(2);
    const s = await opd(['show-plan', plan]);
    expect(s.code).toBe(2);
    expect(s.stdout.split('\n').slice(1).join('\n')).toBe(d.stdout);
    expect(s.stdout).toContain(`~ ovs/bridges/${BR}/ports/${P}: tag 30 → 20`);
    const r = await opd(['apply', plan], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(await ovs.vsctl(['get', 'port', P, 'tag'])).toBe('20');
    const hash = JSON.parse(readFileSync(plan, 'utf8')).plan_hash as string;
    const start = auditEntries(env().OPD_AUDIT_LOG)
      .filter((e) => e.type === 'run.start')
      .pop()!;
    expect(start.saved_plan).toBe(hash);
    expect(start.plan_file).toBe(plan);
    expect((await opd(['diff', f], { env: env() })).code).toBe(0);
  });

  it('plans what it can read when the system bus is down: OVS planned, systemd unknown, exit 69 naming it', async () => {
    const BR2 = `sfd${id}`;
    const f = doc(
      `version: 1\nplugins:\n  ovs:\n    bridges:\n      ${BR2}: { ports: {} }\n  systemd:\n    units:\n      safety-${id}.service: { active_state: active }\n`,
      dir,
      'b.yaml',
    );
    const down = { ...env(), DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(dir, 'no-bus')}` };
    const j = await opd(['diff', f, '-o', 'json'], { env: down });
    expect(j.code).toBe(69);
    // one JSON document on stdout (the plan with unknown[]), as its schema says; the error on stderr
    const out = expectOutput<{
      changes: { address: string }[];
      unknown: { plugin: string; resources: string[] }[];
    }>('diff', j.stdout);
    expect(out.changes.map((c) => c.address)).toEqual([`ovs/bridges/${BR2}`]);
    expect(out.unknown).toEqual([
      expect.objectContaining({ plugin: 'systemd', resources: [`systemd/units/safety-${id}.service`] }),
    ]);
    expect(j.stderr).toContain('systemd unreachable');
    const t = await opd(['diff', f], { env: down });
    expect(t.code).toBe(69);
    expect(t.stdout).toContain(`+ ovs/bridges/${BR2}: bridge`);
    expect(t.stdout).toContain(`? systemd/units/safety-${id}.service: unknown (systemd unreachable)`);
    // apply applies nothing without --partial
    const before = await ovs.dump();
    const a = await opd(['apply', f], { env: down });
    expect(a.code).toBe(69);
    expect(a.stderr).toContain('nothing was applied');
    expect(await ovs.dump()).toBe(before);
    // --partial applies the reachable part and exits 1 naming the rest
    const p = await opd(['apply', f, '--partial'], { env: down });
    expect(p.code, p.stderr).toBe(1);
    expect(p.stdout).toContain(`ok      + ovs/bridges/${BR2}: bridge`);
    expect(p.stderr).toContain('systemd unreachable');
    expect((await ovs.vsctl(['list-br'])).split('\n')).toContain(BR2);
  });
});

describe('confirm or revert (a namespace reached over a veth whose address the document changes)', () => {
  let op: Netns; // the operator's side of the "SSH path"
  let host: Netns; // the managed host
  let dir: string;
  let state: string;
  const CONFIRM = 3;
  const env = () => ({ OPD_NETNS: host.name, OPD_AUDIT_LOG: join(dir, 'audit.jsonl') });
  const addrs = async () =>
    (await host.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', 'vh']))
      .split('\n')
      .map((l) => l.split(/\s+/)[3])
      .filter(Boolean)
      .sort();
  const reset = async () => {
    for (const a of await addrs()) await host.exec('ip', ['addr', 'del', a, 'dev', 'vh']);
    await host.exec('ip', ['addr', 'add', '10.77.0.2/24', 'dev', 'vh']);
  };
  /** Start `opd apply --confirm` in its own process group (as a login shell would be) and wait for its "waiting" line. */
  const startApply = async (seconds: number) => {
    const child = execa('node', [OPD, 'apply', state, '--confirm', String(seconds)], {
      env: { OPD_LOG_LEVEL: 'warn', ...env() },
      reject: false,
      detached: true,
    });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    await until(() => out.includes('waiting for `opd confirm`'), 'opd apply to wait for confirmation', 60_000);
    return { child, out: () => out, t0: Date.now() };
  };

  beforeAll(async () => {
    op = await createNetns('safety');
    host = await createNetns('safety');
    await execa('ip', ['-n', op.name, 'link', 'add', 'vop', 'type', 'veth', 'peer', 'name', 'vh', 'netns', host.name]);
    await op.exec('ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'vop']);
    await op.exec('ip', ['link', 'set', 'vop', 'up']);
    await host.exec('ip', ['addr', 'add', '10.77.0.2/24', 'dev', 'vh']);
    await host.exec('ip', ['link', 'set', 'vh', 'up']);
    dir = tmp('opd-confirm-');
    state = doc(
      'version: 1\nplugins:\n  net:\n    interfaces:\n      vh:\n        addresses:\n          10.77.0.2/24: { state: absent }\n          10.77.0.9/24: {}\n',
      dir,
    );
  });
  afterAll(async () => {
    await op?.remove();
    await host?.remove();
  });

  it('reverts the address within the timeout plus 5 s when no confirmation arrives, and records applied and reverted', async () => {
    const a = await startApply(CONFIRM);
    expect(await addrs()).toEqual(['10.77.0.9/24']);
    await until(
      async () => (await addrs()).join() === '10.77.0.2/24',
      'the old address to come back',
      (CONFIRM + 5) * 1000,
    );
    expect(Date.now() - a.t0).toBeLessThan((CONFIRM + 5) * 1000);
    const r = await a.child;
    expect(r.exitCode).toBe(1);
    expect(a.out()).toContain('REVERTED');
    const e = auditEntries(env().OPD_AUDIT_LOG);
    const run = e.find((x) => x.type === 'confirm' && x.state === 'applied')!.run;
    expect(e.filter((x) => x.run === run && x.type === 'confirm').map((x) => x.state)).toEqual(['applied', 'reverted']);
    expect(e.find((x) => x.run === run && x.type === 'confirm' && x.state === 'reverted')!.result).toBe('ok');
    expect(e.filter((x) => x.run === run && x.type === 'rollback').every((x) => x.result === 'ok')).toBe(true);
    expect((await opd(['audit', 'verify'], { env: env() })).code).toBe(0);
  });

  it('keeps the change when opd confirm arrives from another process', async () => {
    await reset();
    const a = await startApply(60);
    const c = await opd(['confirm'], { env: env() });
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^confirmed run \S+: its changes stay/);
    const r = await a.child;
    expect(r.exitCode).toBe(0);
    expect(a.out()).toContain('confirmed: run');
    expect(await addrs()).toEqual(['10.77.0.9/24']);
    const e = auditEntries(env().OPD_AUDIT_LOG);
    const last = e.filter((x) => x.type === 'confirm').slice(-2);
    expect(last.map((x) => x.state)).toEqual(['applied', 'confirmed']);
    // the keeper ended on its own (its pidfile is gone)
    await until(() => !existsSync(join(dir, 'confirm', `${last[0].run}.pid`)), 'the keeper to exit', 30_000);
    expect((await opd(['confirm'], { env: env() })).code).toBe(1);
  });

  it('still reverts when the invoking opd and its process group are killed during the wait', async () => {
    await reset();
    const a = await startApply(CONFIRM);
    process.kill(-a.child.pid!, 'SIGKILL');
    await a.child;
    expect(await addrs()).toEqual(['10.77.0.9/24']);
    await until(
      async () => (await addrs()).join() === '10.77.0.2/24',
      'the old address to come back',
      (CONFIRM + 5) * 1000,
    );
    // the keeper records the outcome once it has verified the revert
    const states = await until(
      () => {
        const s = auditEntries(env().OPD_AUDIT_LOG)
          .filter((x) => x.type === 'confirm')
          .slice(-2)
          .map((x) => x.state);
        return s[1] === 'reverted' ? s : undefined;
      },
      'the reverted entry',
      30_000,
    );
    expect(states).toEqual(['applied', 'reverted']);
  });

  it('refuses other applies while a run waits, and reverts on `opd confirm --revert` when its keeper died too', async () => {
    await reset();
    const a = await startApply(600);
    process.kill(-a.child.pid!, 'SIGKILL');
    await a.child;
    const applied = auditEntries(env().OPD_AUDIT_LOG)
      .filter((x) => x.type === 'confirm')
      .pop()!;
    const run = applied.run;
    const keeperPid = applied.keeper as number;
    // the keeper is running (its pidfile names it) before it is killed
    await until(
      () =>
        existsSync(join(dir, 'confirm', `${run}.pid`)) &&
        Number(readFileSync(join(dir, 'confirm', `${run}.pid`), 'utf8')) === keeperPid,
      'the keeper pidfile',
    );
    process.kill(keeperPid, 'SIGKILL'); // a reboot, as far as the keeper is concerned
    await until(() => {
      try {
        process.kill(keeperPid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'the keeper to die');
    const busy = await opd(['apply', state], { env: env() });
    expect(busy.code).toBe(75);
    expect(busy.stderr).toContain(`run ${run}`);
    expect(busy.stderr).toContain('opd confirm --revert');
    const l = await opd(['confirm', '--list'], { env: env() });
    expect(l.stdout).toContain('its keeper is gone');
    const r = await opd(['confirm', '--revert'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`reverted run ${run}`);
    expect(await addrs()).toEqual(['10.77.0.2/24']);
    expect(
      auditEntries(env().OPD_AUDIT_LOG)
        .filter((x) => x.type === 'confirm')
        .slice(-2)
        .map((x) => x.state),
    ).toEqual(['applied', 'reverted']);
    expect((await opd(['audit', 'verify'], { env: env() })).code).toBe(0);
  });
});

describe('the daemon with a backend down, its metrics and JSON logs', () => {
  let ovs: OvsSandbox;
  let dir: string;
  let daemon: ReturnType<typeof execa> | undefined;
  let url = '';
  let logs = '';
  const id = uniq(4);
  const BR = `sdm${id}`;
  const P = `sdp${id}`;
  const metric = async (name: string, labels = ''): Promise<number> => {
    const body = await (await fetch(url)).text();
    const line = body
      .split('\n')
      .find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
    return line === undefined ? NaN : Number(line.split(' ')[1]);
  };

  beforeAll(async () => {
    ovs = await startOvs();
    dir = tmp('opd-safety-daemon-');
    const state = doc(
      `version: 1\nplugins:\n  ovs:\n    bridges:\n      ${BR}: { ports: { ${P}: { type: internal } } }\n  libvirt:\n    networks:\n      safety-${id}: { forward: isolated }\n`,
      dir,
    );
    // libvirtd "stopped": the libvirt URI names a socket nobody listens on
    const env = {
      OPD_OVS_DB: ovs.db,
      OPD_AUDIT_LOG: join(dir, 'audit.jsonl'),
      OPD_LIBVIRT_URI: `qemu+unix:///system?socket=${join(dir, 'no-libvirt-sock')}`,
      OPD_LOG_LEVEL: 'info',
    };
    daemon = execa(
      'node',
      [
        OPD,
        'daemon',
        '--state',
        state,
        '--no-dbus',
        '--metrics',
        '127.0.0.1:0',
        '--log-format',
        'json',
        '--debounce',
        '100',
        '--backoff',
        '1',
        '--resync',
        '0',
      ],
      { env, reject: false },
    );
    daemon.stderr!.on('data', (b: Buffer) => (logs += b.toString()));
    url = await until(
      () => /"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(logs)?.[1],
      'the metrics listener',
      60_000,
    );
    await until(() => logs.includes('"msg":"ready"'), 'the first reconcile', 120_000);
  });
  afterAll(async () => {
    daemon?.kill('SIGTERM');
    await daemon;
    await ovs?.stop();
  });

  it('logs pino JSON lines with --log-format json', () => {
    const lines = logs.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(JSON.parse(l)).toHaveProperty('msg');
  });

  it('reconciles OVS although libvirt is down, and marks libvirt unknown', async () => {
    expect((await ovs.vsctl(['list-ports', BR])).split('\n')).toContain(P);
    expect(logs).toContain('backend down: its resources are unknown');
    expect(await metric('opd_plugin_unreachable', '{plugin="libvirt"}')).toBe(1);
    expect(await metric('opd_plugin_unreachable', '{plugin="ovs"}')).toBe(0);
    expect(await metric('opd_resources', '{state="unknown"}')).toBe(1);
  });

  it('repairs OVS drift while libvirt stays down, and the metrics move', async () => {
    const before = {
      detected: await metric('opd_drift_detected_total'),
      repaired: await metric('opd_drift_repaired_total'),
      runs: await metric('opd_runs_total', '{status="ok",trigger="drift"}'),
      changes: await metric('opd_changes_total', '{plugin="ovs",outcome="ok"}'),
      audit: await metric('opd_audit_last_seq'),
      lastOk: await metric('opd_last_successful_run_timestamp_seconds'),
    };
    expect(before.changes).toBeGreaterThanOrEqual(2); // the first run created the bridge and its port
    await ovs.vsctl(['--no-wait', 'del-port', BR, P]);
    await until(
      async () => (await ovs.vsctl(['list-ports', BR])).split('\n').includes(P),
      'the port to come back',
      60_000,
    );
    await until(
      async () => (await metric('opd_drift_repaired_total')) === before.repaired + 1,
      'the repaired drift in the metrics',
      30_000,
    );
    expect(await metric('opd_drift_detected_total')).toBe(before.detected + 1);
    expect(await metric('opd_runs_total', '{status="ok",trigger="drift"}')).toBe(
      (Number.isNaN(before.runs) ? 0 : before.runs) + 1,
    );
    expect(await metric('opd_changes_total', '{plugin="ovs",outcome="ok"}')).toBeGreaterThan(before.changes);
    expect(await metric('opd_audit_last_seq')).toBeGreaterThan(before.audit);
    expect(await metric('opd_audit_entries_total')).toBeGreaterThan(0);
    expect(await metric('opd_last_successful_run_timestamp_seconds')).toBeGreaterThanOrEqual(before.lastOk);
    expect(await metric('opd_run_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(await metric('opd_resources_failing')).toBe(0);
    expect(await metric('opd_resources_backoff')).toBe(0);
    expect(await metric('opd_plugin_unreachable', '{plugin="libvirt"}')).toBe(1);
  });

  it('serves nothing but /metrics, on loopback', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
  });
});
