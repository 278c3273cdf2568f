#!/usr/bin/env node
// The cost of write-ahead intents (issue 23) on the two large applies: the 10,000-port cold
// converge (a fresh private ovsdb-server each time) and the 2,000-file cold apply (a fresh
// sandbox root each time, on the disk of the temp directory: every file fsync'ed as the files
// plugin promises). Two builds of opd are loaded into one process and run alternately, K times
// each (A B B A …), so that machine load hits both alike; each run gets a fresh audit trail.
//   git worktree add /tmp/opd-before <rev before the intents> && (cd /tmp/opd-before && npm ci && npm run build)
//   node --expose-gc bench/intent.mjs /tmp/opd-before .      → bench/results/intent.json
// Env: INTENT_K (runs per side, default 7), INTENT_PORTS (default 10000), INTENT_FILES (default 2000),
// INTENT_ROOT_DIR (where the fresh roots go; /dev/shm shows the CPU cost alone, without fsync).
// The load average is recorded before and after: rows at a load >= the number of cores are
// marked as measured on a loaded machine.
import { join, resolve } from 'node:path';
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
if (process.argv.length < 4) {
  console.error('usage: node --expose-gc bench/intent.mjs BEFORE_DIR AFTER_DIR (two built opd checkouts)');
  process.exit(64);
}
const BEFORE = resolve(process.argv[2]),
  AFTER = resolve(process.argv[3]);
const K = Number(process.env.INTENT_K ?? 7);
const PORTS = Number(process.env.INTENT_PORTS ?? 10000);
const FILES = Number(process.env.INTENT_FILES ?? 2000);
const libB = await import(join(BEFORE, 'bench/suites/lib.mjs'));
const libA = await import(join(AFTER, 'bench/suites/lib.mjs'));
const eB = await libB.engine(),
  eA = await libA.engine();
const now = () => performance.now();
const r1 = (x) => Math.round(x * 10) / 10;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const loadBefore = loadavg();

function ovsDoc(n) {
  const bridges = {};
  const per = Math.ceil(n / 10);
  for (let b = 0; b < 10; b++) {
    const ports = {};
    for (let p = 0; p < per && b * per + p < n; p++) ports[`s${b}x${p}`] = { type: 'internal', tag: (p % 4000) + 1 };
    bridges[`sbr${b}`] = { ports };
  }
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges } } });
}

function filesDoc(n) {
  const paths = { '/etc/opd-intent': { type: 'directory', mode: '0755' } };
  for (let i = 0; i < n; i++) paths[`/etc/opd-intent/f${i}.conf`] = { content: `key = ${i}\n`, mode: '0640' };
  return JSON.stringify({ version: 1, plugins: { files: { paths } } });
}

/** One cold apply with engine e: a fresh backend (`fresh()` gives settings and a cleanup), a fresh trail. */
async function cold(e, text, fresh) {
  const { settings, down } = fresh();
  try {
    const prep = await e.prepareLoaded(e.parseText(Buffer.from(text), 'intent.json'));
    const auditLog = join(libA.tmp(), 'audit.jsonl');
    globalThis.gc?.();
    const c = process.cpuUsage();
    const t = now();
    const r = await e.run(prep, { settings, log: e.log, auditLog });
    const ms = now() - t;
    const cpu = process.cpuUsage(c);
    if (r.status !== 'ok') throw new Error(`cold apply: ${r.status}`);
    return {
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      trailBytes: statSync(auditLog).size,
      changes: r.plan.changes.length,
    };
  } finally {
    down();
  }
}

const rows = [];
async function ab(name, text, fresh) {
  const tB = [],
    tA = [],
    cB = [],
    cA = [];
  let bytes = {},
    changes = 0;
  for (let i = 0; i < K; i++)
    for (const [e, t, c, side] of i % 2
      ? [
          [eA, tA, cA, 'after'],
          [eB, tB, cB, 'before'],
        ]
      : [
          [eB, tB, cB, 'before'],
          [eA, tA, cA, 'after'],
        ]) {
      const r = await cold(e, text, fresh);
      t.push(r.ms);
      c.push(r.cpuMs);
      bytes[side] = r.trailBytes;
      changes = r.changes;
    }
  const [b, a] = [median(tB), median(tA)];
  rows.push({
    case: name,
    changes,
    before_median_ms: r1(b),
    after_median_ms: r1(a),
    ratio_median: Math.round((a / b) * 1000) / 1000,
    before_min_ms: r1(Math.min(...tB)),
    after_min_ms: r1(Math.min(...tA)),
    // CPU time of this process (user + system): what the run itself costs, less sensitive to load
    before_cpu_median_ms: r1(median(cB)),
    after_cpu_median_ms: r1(median(cA)),
    ratio_cpu_median: Math.round((median(cA) / median(cB)) * 1000) / 1000,
    trail_bytes_before: bytes.before,
    trail_bytes_after: bytes.after,
    runs_per_side: K,
  });
  console.error(JSON.stringify(rows.at(-1)));
}

await ab(`cold converge, ${PORTS} OVS ports (fresh database each run)`, ovsDoc(PORTS), () => {
  const ovs = libA.ovsUp(false);
  return { settings: { ovsDb: ovs.db }, down: () => ovs.down() };
});
await ab(`cold apply, ${FILES} files + their directory (fresh root each run, fsync'ed)`, filesDoc(FILES), () => ({
  settings: { root: mkdtempSync(join(process.env.INTENT_ROOT_DIR ?? tmpdir(), 'opd-intent-root-')) },
  down: () => {},
}));

const loadAfter = loadavg();
const loaded = Math.max(loadBefore[0], loadAfter[0]) >= cpus().length;
mkdirSync(new URL('results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('results/intent.json', import.meta.url),
  JSON.stringify(
    {
      before: BEFORE,
      after: AFTER,
      date: new Date().toISOString(),
      cpus: cpus().length,
      load_before: loadBefore.map(r1),
      load_after: loadAfter.map(r1),
      valid: !loaded,
      note: loaded
        ? `measured at a load average >= ${cpus().length} (the number of cores): indicative only, re-measure on a quiet machine`
        : 'quiet machine',
      rows,
    },
    null,
    1,
  ) + '\n',
);
console.table(rows);
if (loaded)
  console.error(
    `warning: load average ${loadBefore[0]} → ${loadAfter[0]} on ${cpus().length} cores: not a valid figure`,
  );
process.exit(0);
