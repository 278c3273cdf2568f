// OVS: N ports on 10 bridges against a private ovsdb-server (database only).
// cold converge, no-op diff, no-op apply; processes spawned; the floor = one ovs-vsctl JSON read.
import { join } from 'node:path';
import { engine, ms, median, now, ovsUp, sh, tmp } from './lib.mjs';

function document(n) {
  const bridges = {};
  for (let b = 0; b < 10; b++) {
    const ports = {};
    for (let p = 0; p < n / 10; p++) ports[`p${b}x${p}`] = { type: 'internal', tag: (p % 4000) + 1 };
    bridges[`bbr${b}`] = { ports };
  }
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges } } });
}

export async function run({ progress = () => {} } = {}) {
  const e = await engine();
  const sizes = (process.env.OPD_BENCH_OVS_SIZES ?? '100,1000').split(',').map(Number);
  const rows = [];
  for (const n of sizes) {
    const ovs = ovsUp(false);
    try {
      const settings = { ovsDb: ovs.db };
      const auditLog = join(tmp(), 'audit.jsonl');
      const prep = await e.prepareLoaded(e.parseText(Buffer.from(document(n)), `bench-${n}.json`));
      e.resetExecStats();
      let t = now();
      const cold = await e.run(prep, { settings, log: e.log, auditLog });
      const coldMs = now() - t;
      const coldProcs = e.execStats().spawned;
      if (cold.status !== 'ok') throw new Error(`cold converge failed: ${cold.status}`);
      progress(`N=${n}: converged in ${ms(coldMs)} ms`);
      e.resetExecStats();
      const diffMs = await median(5, () => e.computePlan(prep, { settings, log: e.log }));
      const diffProcs = e.execStats().spawned / 5;
      const check = await e.computePlan(prep, { settings, log: e.log });
      if (check.plan.changes.length) throw new Error(`false diff: ${check.plan.changes.length} changes after converge`);
      e.resetExecStats();
      const applyMs = await median(5, () => e.run(prep, { settings, log: e.log, auditLog }));
      const applyProcs = e.execStats().spawned / 5;
      const floorMs = await median(5, async () =>
        sh('ovs-vsctl', [`--db=${ovs.db}`, '--format=json', '--', 'list', 'Bridge', '--', 'list', 'Port', '--', 'list', 'Interface']),
      );
      rows.push({
        ports: n,
        cold_converge_ms: ms(coldMs),
        cold_processes: coldProcs,
        noop_diff_ms: ms(diffMs),
        noop_diff_processes: diffProcs,
        noop_apply_ms: ms(applyMs),
        noop_apply_processes: applyProcs,
        floor_read_ms: ms(floorMs),
        diff_over_floor: Math.round((diffMs / floorMs) * 100) / 100,
      });
    } finally {
      ovs.down();
    }
  }
  return { rows, notes: 'database-only ovsdb-server (no vswitchd); in-process engine runs (no Node start-up); medians of 5; processes = ovs-vsctl spawned by opd' };
}
