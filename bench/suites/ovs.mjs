// OVS: N ports on 10 bridges against a private ovsdb-server.
// 1. database only, in-process engine: cold converge, no-op diff, no-op apply, OVSDB requests,
//    against the floor read (one ovs-vsctl JSON read of the three tables).
// 2. with ovs-vswitchd (netdev datapath), as a user runs it: `opd diff` of 1,000 ports with
//    nothing to do (a process, start-up included) against the one-call floor reads, each a
//    process too: one `ovs-vsctl --format=json list` of the three tables, one `ovsdb-client
//    transact` selecting them.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { cli, engine, ms, median, now, ovsUp, sh, spawnMs, tmp } from './lib.mjs';

function document(n, netdev = false) {
  const bridges = {};
  for (let b = 0; b < 10; b++) {
    const ports = {};
    for (let p = 0; p < n / 10; p++) ports[`p${b}x${p}`] = { type: 'internal', tag: (p % 4000) + 1 };
    bridges[`bbr${b}`] = netdev ? { datapath_type: 'netdev', ports } : { ports };
  }
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges } } });
}

async function requests() {
  return (await import(join(new URL('../../', import.meta.url).pathname, 'dist/ovsdb/client.js'))).OvsdbClient;
}

export async function run({ progress = () => {} } = {}) {
  const e = await engine();
  const Client = await requests();
  const sizes = (process.env.OPD_BENCH_OVS_SIZES ?? '100,1000').split(',').map(Number);
  const rows = [];
  for (const n of sizes) {
    const ovs = ovsUp(false);
    try {
      const settings = { ovsDb: ovs.db };
      const auditLog = join(tmp(), 'audit.jsonl');
      const prep = await e.prepareLoaded(e.parseText(Buffer.from(document(n)), `bench-${n}.json`));
      e.resetExecStats();
      Client.requests = 0;
      let t = now();
      const cold = await e.run(prep, { settings, log: e.log, auditLog });
      const coldMs = now() - t;
      const coldReq = Client.requests;
      if (cold.status !== 'ok') throw new Error(`cold converge failed: ${cold.status}`);
      progress(`N=${n}: converged in ${ms(coldMs)} ms`);
      e.resetExecStats();
      Client.requests = 0;
      const diffMs = await median(5, () => e.computePlan(prep, { settings, log: e.log }));
      const diffReq = Client.requests / 5;
      const check = await e.computePlan(prep, { settings, log: e.log });
      if (check.plan.changes.length) throw new Error(`false diff: ${check.plan.changes.length} changes after converge`);
      const applyMs = await median(5, () => e.run(prep, { settings, log: e.log, auditLog }));
      const floorMs = await median(5, async () =>
        sh('ovs-vsctl', [
          `--db=${ovs.db}`,
          '--format=json',
          '--',
          'list',
          'Bridge',
          '--',
          'list',
          'Port',
          '--',
          'list',
          'Interface',
        ]),
      );
      rows.push({
        setup: `${n} ports, database only, in-process`,
        cold_converge_ms: ms(coldMs),
        cold_requests: coldReq,
        noop_diff_ms: ms(diffMs),
        noop_diff_requests: diffReq,
        noop_apply_ms: ms(applyMs),
        processes: e.execStats().spawned,
        floor_read_ms: ms(floorMs),
        diff_over_floor: Math.round((diffMs / floorMs) * 100) / 100,
      });
    } finally {
      ovs.down();
    }
  }

  // with ovs-vswitchd, netdev: the CLI as a user runs it
  const N = Number(process.env.OPD_BENCH_OVS_VSWITCHD_PORTS ?? 1000);
  const ovs = ovsUp(true);
  try {
    const dir = tmp();
    const file = join(dir, 'state.json');
    writeFileSync(file, document(N, true));
    const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };
    const t = now();
    const first = cli(['apply', file], env, 1);
    const coldMs = now() - t;
    if (first.code !== 0) throw new Error(`opd apply with vswitchd exited ${first.code}`);
    progress(`vswitchd N=${N}: converged in ${ms(coldMs)} ms`);
    const diff = cli(['diff', file], env, 5);
    if (diff.code !== 0) throw new Error(`opd diff after converge exited ${diff.code} (false diff)`);
    const vsctl = spawnMs('ovs-vsctl', [
      `--db=${ovs.db}`,
      '--format=json',
      '--',
      'list',
      'Bridge',
      '--',
      'list',
      'Port',
      '--',
      'list',
      'Interface',
    ]);
    const sel = (t) => ({ op: 'select', table: t, where: [] });
    const client = spawnMs('ovsdb-client', [
      'transact',
      ovs.db,
      JSON.stringify(['Open_vSwitch', sel('Bridge'), sel('Port'), sel('Interface')]),
    ]);
    const prep = await e.prepareLoaded(e.parseText(Buffer.from(document(N, true)), 'vswitchd.json'));
    const inproc = await median(5, () => e.computePlan(prep, { settings: { ovsDb: ovs.db }, log: e.log }));
    const nodeMs = spawnMs(process.execPath, ['-e', '0']);
    rows.push({
      setup: `${N} ports on 10 bridges, ovs-vswitchd (netdev), opd as a process`,
      cold_converge_ms: ms(coldMs),
      noop_diff_ms: ms(diff.ms),
      noop_diff_in_process_ms: ms(inproc),
      node_start_ms: ms(nodeMs),
      floor_ovs_vsctl_ms: ms(vsctl),
      floor_ovsdb_client_ms: ms(client),
      diff_over_floor: Math.round((diff.ms / Math.min(vsctl, client)) * 100) / 100,
      diff_over_ovs_vsctl: Math.round((diff.ms / vsctl) * 100) / 100,
    });
  } finally {
    ovs.down();
  }
  return {
    rows,
    notes:
      'in-process rows: database-only ovsdb-server, engine called in-process (no Node start-up), medians of 5, requests = OVSDB round trips, processes = spawned by opd. vswitchd row: opd apply/diff as processes (medians of 5 for diff) against the floor reads, each one process (medians of 5); diff_over_floor uses the faster floor',
  };
}
