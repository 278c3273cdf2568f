// Scale: no-op diff, no-op apply and cold converge at N = 100, 1,000, 10,000 resources for OVS
// ports (private ovsdb-server) and files (sandbox root), each next to the floor measured in the
// same run: the minimal backend read of the same state (one ovs-vsctl JSON read; lstat + read
// of every file) and the minimal write (OVS: one OVSDB transact inserting the same rows into a
// fresh database; files: writeFileSync of every file, and the same with atomic-write durability:
// temp file, fsync, rename, fsync of the directory, as the files plugin writes). Ratio = opd /
// floor; growth = time(N) / time(N/10) (10 = linear; the target is <= 12), reported per plugin
// in the rows of the largest N and summed up in `growth`.
import {
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { engine, ms, median, now, ovsInsertTxn, ovsUp, rawTransact, sh, tmp } from './lib.mjs';

const SIZES = (process.env.OPD_BENCH_SIZES ?? '100,1000,10000').split(',').map(Number);
const KINDS = (process.env.OPD_BENCH_SCALE_PLUGINS ?? 'ovs,files').split(',');

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

async function measure(e, docText, settings, floor, coldFloor, coldFloorDurable) {
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
  const coldFloorDurableMs = coldFloorDurable ? await coldFloorDurable() : undefined;
  return { coldMs, diffMs, applyMs, floorMs, coldFloorMs, coldFloorDurableMs };
}

export async function run({ progress = () => {} } = {}) {
  const e = await engine();
  const rows = [];
  const prev = {};
  for (const kind of KINDS) {
    for (const n of SIZES) {
      let r;
      if (kind === 'ovs') {
        const text = ovsDoc(n);
        // two more cold converges, each on a fresh database: the row shows the median of three
        const colds = [];
        for (let i = 0; i < 2; i++) {
          const fresh = ovsUp(false);
          try {
            const prep = await e.prepareLoaded(e.parseText(Buffer.from(text), 'scale.json'));
            const t = now();
            const res = await e.run(prep, {
              settings: { ovsDb: fresh.db },
              log: e.log,
              auditLog: join(tmp(), 'audit.jsonl'),
            });
            colds.push(now() - t);
            if (res.status !== 'ok') throw new Error(`cold converge: ${res.status}`);
          } finally {
            fresh.down();
          }
        }
        const ovs = ovsUp(false);
        try {
          r = await measure(
            e,
            text,
            { ovsDb: ovs.db },
            async () =>
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
          r.coldMs = [...colds, r.coldMs].sort((x, y) => x - y)[1];
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
          async () => {
            // what the files plugin promises per file: nothing half-written survives a crash
            const d = join(tmp('opd-scale-floor-'), 'etc/opd-scale');
            const t = now();
            mkdirSync(d, { recursive: true });
            for (let i = 0; i < n - 1; i++) {
              const f = join(d, `f${i}.conf`);
              const fd = openSync(`${f}.tmp`, 'wx', 0o640);
              writeSync(fd, `key = ${i}\n`);
              fsyncSync(fd);
              closeSync(fd);
              renameSync(`${f}.tmp`, f);
              const dfd = openSync(d, 'r');
              fsyncSync(dfd);
              closeSync(dfd);
            }
            return now() - t;
          },
        );
      }
      const growth = prev[kind] ? Math.round((r.diffMs / prev[kind].diffMs) * 10) / 10 : '';
      const coldGrowth = prev[kind] ? Math.round((r.coldMs / prev[kind].coldMs) * 10) / 10 : '';
      prev[kind] = r;
      rows.push({
        plugin: kind,
        resources: `${n} ${kind === 'ovs' ? 'ports' : 'files'}`,
        cold_converge_ms: ms(r.coldMs),
        cold_floor_ms: ms(r.coldFloorMs),
        cold_over_floor: Math.round((r.coldMs / r.coldFloorMs) * 100) / 100,
        cold_floor_durable_ms: r.coldFloorDurableMs === undefined ? '' : ms(r.coldFloorDurableMs),
        cold_over_durable_floor:
          r.coldFloorDurableMs === undefined ? '' : Math.round((r.coldMs / r.coldFloorDurableMs) * 100) / 100,
        cold_growth_x10: coldGrowth,
        noop_diff_ms: ms(r.diffMs),
        floor_ms: ms(r.floorMs),
        diff_over_floor: Math.round((r.diffMs / r.floorMs) * 100) / 100,
        diff_growth_x10: growth,
        noop_apply_ms: ms(r.applyMs),
      });
      progress(
        `${kind} N=${n}: cold ${ms(r.coldMs)} ms (${Math.round((r.coldMs / r.coldFloorMs) * 100) / 100}x floor), no-op diff ${ms(r.diffMs)} ms`,
      );
    }
  }
  // per plugin: the growth of the largest step (10 = linear; target <= 12) and the ratios at the largest N
  const growth = KINDS.map((kind) => {
    const last = rows.filter((x) => x.plugin === kind).at(-1);
    const linear = (g) => (g === '' ? '' : g <= 12 ? 'yes' : 'no');
    return {
      plugin: kind,
      resources: last.resources,
      cold_growth_x10: last.cold_growth_x10,
      cold_linear: linear(last.cold_growth_x10),
      diff_growth_x10: last.diff_growth_x10,
      diff_linear: linear(last.diff_growth_x10),
      cold_over_floor: last.cold_over_floor,
      ...(kind === 'files' ? { cold_over_durable_floor: last.cold_over_durable_floor } : {}),
      diff_over_floor: last.diff_over_floor,
    };
  });
  for (const g of growth)
    progress(
      `growth ${g.plugin} (${g.resources}): cold x${g.cold_growth_x10} (linear: ${g.cold_linear}), no-op diff x${g.diff_growth_x10} (linear: ${g.diff_linear}); cold ${g.cold_over_floor}x floor`,
    );
  return {
    rows,
    growth,
    notes:
      "in-process engine (no Node start-up); cold converge: OVS median of 3 fresh databases, files one run; no-op diff/apply and floors medians of 3; OVS database-only; files under a sandbox root; growth = time ratio for 10x resources (10 = linear, target <= 12); cold floor = OVS: one OVSDB transact of the same rows into a fresh database (raw JSON over the socket; ovsdb-client cannot take a 10,000-port transaction on its command line), files: writeFileSync of every file; durable floor (files) = temp file, fsync, rename, fsync of the directory per file, the files plugin's own promise; diff floor = OVS: one ovs-vsctl JSON read, files: lstat + read of every file",
  };
}
