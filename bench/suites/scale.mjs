// Scale: no-op diff, no-op apply and cold converge at N = 100, 1,000, 10,000 resources for OVS
// ports (private ovsdb-server) and files (sandbox root), each next to the floor measured in the
// same run: the minimal backend read of the same state (one ovs-vsctl JSON read; lstat + read
// of every file). Ratio = opd / floor; growth = time(N) / time(N/10) (10 = linear).
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { engine, ms, median, now, ovsUp, sh, tmp } from './lib.mjs';

const SIZES = (process.env.OPD_BENCH_SIZES ?? '100,1000,10000').split(',').map(Number);

function ovsDoc(n) {
  const bridges = {};
  const per = Math.max(1, Math.ceil(n / 10));
  for (let b = 0; b < 10; b++) {
    const ports = {};
    for (let p = 0; p < per && b * per + p < n; p++) ports[`s${b}x${p}`] = { type: 'internal', tag: (p % 4000) + 1 };
    bridges[`sbr${b}`] = { ports };
  }
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges } } });
}

function filesDoc(n) {
  const paths = { '/etc/opd-scale': { type: 'directory', mode: '0755' } };
  for (let i = 0; i < n - 1; i++) paths[`/etc/opd-scale/f${i}.conf`] = { content: `key = ${i}\n`, mode: '0640' };
  return JSON.stringify({ version: 1, plugins: { files: { paths } } });
}

async function measure(e, docText, settings, floor) {
  const prep = await e.prepareLoaded(e.parseText(Buffer.from(docText), 'scale.json'));
  const auditLog = join(tmp(), 'audit.jsonl');
  let t = now();
  const cold = await e.run(prep, { settings, log: e.log, auditLog });
  const coldMs = now() - t;
  if (cold.status !== 'ok') throw new Error(`cold converge: ${cold.status}`);
  const k = 3;
  const diffMs = await median(k, async () => {
    const c = await e.computePlan(prep, { settings, log: e.log });
    if (c.plan.changes.length) throw new Error(`false diff: ${c.plan.changes.length} changes`);
  });
  const applyMs = await median(k, () => e.run(prep, { settings, log: e.log, auditLog }));
  const floorMs = await median(k, floor);
  return { coldMs, diffMs, applyMs, floorMs };
}

export async function run({ progress = () => {} } = {}) {
  const e = await engine();
  const rows = [];
  const prev = {};
  for (const kind of ['ovs', 'files']) {
    for (const n of SIZES) {
      let r;
      if (kind === 'ovs') {
        const ovs = ovsUp(false);
        try {
          r = await measure(e, ovsDoc(n), { ovsDb: ovs.db }, async () =>
            sh('ovs-vsctl', [`--db=${ovs.db}`, '--format=json', '--', 'list', 'Bridge', '--', 'list', 'Port', '--', 'list', 'Interface']),
          );
        } finally {
          ovs.down();
        }
      } else {
        const root = tmp('opd-scale-root-');
        r = await measure(e, filesDoc(n), { root }, async () => {
          for (let i = 0; i < n - 1; i++) {
            const p = join(root, `etc/opd-scale/f${i}.conf`);
            lstatSync(p);
            readFileSync(p);
          }
        });
      }
      const growth = prev[kind] ? Math.round((r.diffMs / prev[kind]) * 10) / 10 : '';
      prev[kind] = r.diffMs;
      rows.push({
        resources: `${n} ${kind === 'ovs' ? 'ports' : 'files'}`,
        cold_converge_ms: ms(r.coldMs),
        noop_diff_ms: ms(r.diffMs),
        noop_apply_ms: ms(r.applyMs),
        floor_ms: ms(r.floorMs),
        diff_over_floor: Math.round((r.diffMs / r.floorMs) * 100) / 100,
        diff_growth_x10: growth,
      });
      progress(`${kind} N=${n}: no-op diff ${ms(r.diffMs)} ms`);
    }
  }
  return { rows, notes: 'in-process engine (no Node start-up); medians of 3; OVS database-only; files under a sandbox root; growth = no-op diff time ratio for 10x resources (10 = linear)' };
}
