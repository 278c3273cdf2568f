// Scale: no-op diff, no-op apply and cold converge at N = 100, 1,000, 10,000 resources for OVS
// ports (private ovsdb-server) and files (sandbox root), each next to the floor measured in the
// same run: the minimal backend read of the same state (one ovs-vsctl JSON read; lstat + read
// of every file) and the minimal write (OVS: one OVSDB transact inserting the same rows into a
// fresh database; files: writeFileSync of every file). Ratio = opd / floor; growth =
// time(N) / time(N/10) (10 = linear).
import { lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { engine, ms, median, now, ovsInsertTxn, ovsUp, rawTransact, sh, tmp } from './lib.mjs';

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

async function measure(e, docText, settings, floor, coldFloor) {
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
  const coldFloorMs = await coldFloor();
  return { coldMs, diffMs, applyMs, floorMs, coldFloorMs };
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
          const text = ovsDoc(n);
          r = await measure(
            e,
            text,
            { ovsDb: ovs.db },
            async () => sh('ovs-vsctl', [`--db=${ovs.db}`, '--format=json', '--', 'list', 'Bridge', '--', 'list', 'Port', '--', 'list', 'Interface']),
            async () => {
              // the same rows into a fresh database, one transaction (median of 3 fresh databases)
              const txn = ovsInsertTxn(JSON.parse(text).plugins.ovs.bridges);
              const ts = [];
              for (let i = 0; i < 3; i++) {
                const fresh = ovsUp(false);
                try {
                  const t = now();
                  await rawTransact(fresh.db.slice('unix:'.length), txn);
                  ts.push(now() - t);
                } finally {
                  fresh.down();
                }
              }
              return ts.sort((a, b) => a - b)[1];
            },
          );
        } finally {
          ovs.down();
        }
      } else {
        const root = tmp('opd-scale-root-');
        r = await measure(
          e,
          filesDoc(n),
          { root },
          async () => {
            for (let i = 0; i < n - 1; i++) {
              const p = join(root, `etc/opd-scale/f${i}.conf`);
              lstatSync(p);
              readFileSync(p);
            }
          },
          async () => {
            const d = join(tmp('opd-scale-floor-'), 'etc/opd-scale');
            const t = now();
            mkdirSync(d, { recursive: true });
            for (let i = 0; i < n - 1; i++) writeFileSync(join(d, `f${i}.conf`), `key = ${i}\n`, { mode: 0o640 });
            return now() - t;
          },
        );
      }
      const growth = prev[kind] ? Math.round((r.diffMs / prev[kind].diffMs) * 10) / 10 : '';
      const coldGrowth = prev[kind] ? Math.round((r.coldMs / prev[kind].coldMs) * 10) / 10 : '';
      prev[kind] = r;
      rows.push({
        resources: `${n} ${kind === 'ovs' ? 'ports' : 'files'}`,
        cold_converge_ms: ms(r.coldMs),
        cold_floor_ms: ms(r.coldFloorMs),
        cold_over_floor: Math.round((r.coldMs / r.coldFloorMs) * 100) / 100,
        cold_growth_x10: coldGrowth,
        noop_diff_ms: ms(r.diffMs),
        noop_apply_ms: ms(r.applyMs),
        floor_ms: ms(r.floorMs),
        diff_over_floor: Math.round((r.diffMs / r.floorMs) * 100) / 100,
        diff_growth_x10: growth,
      });
      progress(`${kind} N=${n}: no-op diff ${ms(r.diffMs)} ms`);
    }
  }
  return { rows, notes: 'in-process engine (no Node start-up); medians of 3; OVS database-only; files under a sandbox root; growth = time ratio for 10x resources (10 = linear); cold floor = OVS: one OVSDB transact of the same rows into a fresh database (raw JSON over the socket; ovsdb-client cannot take a 10,000-port transaction on its command line), files: writeFileSync of every file' };
}
