#!/usr/bin/env node
// A/B of the no-op read+diff+plan of two builds of opd (two checkouts, each built with
// `npm run build`): both engines are loaded into one process and called alternately, K times
// each, so machine load hits both alike. Cases: OVS ports (database only, private ovsdb-server)
// and files under a sandbox root; no shared backend is touched.
//   git worktree add /tmp/opd-before <rev> && (cd /tmp/opd-before && npm ci && npm run build)
//   node --expose-gc bench/compare.mjs /tmp/opd-before .     → bench/results/compare.json
// Env: COMPARE_K (runs per side, default 25), COMPARE_OVS (port counts, default 1000,10000; empty: none).
import { join, resolve } from 'node:path';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
if (process.argv.length < 4) {
  console.error('usage: node --expose-gc bench/compare.mjs BEFORE_DIR AFTER_DIR (two built opd checkouts)');
  process.exit(64);
}
const BEFORE = resolve(process.argv[2]),
  AFTER = resolve(process.argv[3]);
const K = Number(process.env.COMPARE_K ?? 25);
const libB = await import(join(BEFORE, 'bench/suites/lib.mjs'));
const libA = await import(join(AFTER, 'bench/suites/lib.mjs'));
const eB = await libB.engine(),
  eA = await libA.engine();
const now = () => performance.now();
const stats = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return { min: s[0], median: s[Math.floor(s.length / 2)] };
};
const r1 = (x) => Math.round(x * 10) / 10;
const rows = [];
async function ab(name, file, text, settings) {
  const pB = await eB.prepareLoaded(eB.parseText(Buffer.from(text), file));
  const pA = await eA.prepareLoaded(eA.parseText(Buffer.from(text), file));
  const log = eA.log;
  for (const [e, p] of [
    [eB, pB],
    [eA, pA],
  ]) {
    const c = await e.computePlan(p, { settings, log: e.log });
    if (c.plan.changes.length) throw new Error(`${name}: ${c.plan.changes.length} changes, expected none`);
  }
  const tB = [],
    tA = [];
  for (let i = 0; i < K; i++) {
    for (const [e, p, t] of i % 2
      ? [
          [eA, pA, tA],
          [eB, pB, tB],
        ]
      : [
          [eB, pB, tB],
          [eA, pA, tA],
        ]) {
      globalThis.gc?.();
      const t0 = now();
      await e.computePlan(p, { settings, log });
      t.push(now() - t0);
    }
  }
  const b = stats(tB),
    a = stats(tA);
  rows.push({
    case: name,
    before_min_ms: r1(b.min),
    after_min_ms: r1(a.min),
    before_median_ms: r1(b.median),
    after_median_ms: r1(a.median),
    ratio_median: Math.round((a.median / b.median) * 100) / 100,
    ratio_min: Math.round((a.min / b.min) * 100) / 100,
  });
  console.error(JSON.stringify(rows.at(-1)));
}
// OVS, database only
for (const n of (process.env.COMPARE_OVS ?? '1000,10000').split(',').filter(Boolean).map(Number)) {
  const ovs = libA.ovsUp(false);
  try {
    const bridges = {};
    for (let b = 0; b < 10; b++) {
      const ports = {};
      for (let p = 0; p < n / 10; p++) ports[`p${b}x${p}`] = { type: 'internal', tag: (p % 4000) + 1 };
      bridges[`bbr${b}`] = { ports };
    }
    const text = JSON.stringify({ version: 1, plugins: { ovs: { bridges } } });
    const settings = { ovsDb: ovs.db };
    const prep = await eA.prepareLoaded(eA.parseText(Buffer.from(text), `ab-${n}.json`));
    const r = await eA.run(prep, { settings, log: eA.log, auditLog: join(libA.tmp(), 'audit.jsonl') });
    if (r.status !== 'ok') throw new Error('ovs converge failed');
    await ab(`ovs no-op diff, ${n} ports (database only)`, `ab-${n}.json`, text, settings);
  } finally {
    ovs.down();
  }
}
// files under a sandbox root
{
  const N = 1000,
    work = mkdtempSync(join(tmpdir(), 'opd-ab-files-')),
    root = join(work, 'root');
  let text = 'version: 1\nplugins:\n  files:\n    paths:\n      /etc/opd-bench: { type: directory, mode: "0755" }\n';
  for (let i = 0; i < N; i++)
    text += `      /etc/opd-bench/f${i}.conf: { content: "key = ${i}\\nvalue = ${'x'.repeat(64)}\\n", mode: "0640", owner: root, group: root }\n`;
  const settings = { root };
  const prep = await eA.prepareLoaded(eA.parseText(Buffer.from(text), 'files.yaml'));
  const r = await eA.run(prep, { settings, log: eA.log, auditLog: join(work, 'audit.jsonl') });
  if (r.status !== 'ok') throw new Error('files converge failed');
  await ab(`files no-op diff, ${N + 1} paths`, 'files.yaml', text, settings);
}
mkdirSync(new URL('results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('results/compare.json', import.meta.url),
  JSON.stringify({ before: BEFORE, after: AFTER, k: K, load: loadavg(), rows }, null, 1) + '\n',
);
console.table(rows);
process.exit(0);
