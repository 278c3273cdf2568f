#!/usr/bin/env node
// npm run bench [-- suite…]: runs bench/suites/<suite>.mjs, writes bench/results/<suite>.json,
// prints each suite's rows as a table. Speed is measured here, never in tests.
// OPD_BENCH_LABEL=before (with OPD_BENCH_BIN=/other/build/bin/opd.js): results go to
// bench/results/<suite>.before.json instead (bench/acceptance.sh measures the build before
// issue 31's work that way).
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
import { spawnSync } from 'node:child_process';
const all = readdirSync(here + 'suites')
  .filter((f) => f.endsWith('.mjs') && f !== 'lib.mjs')
  .map((f) => f.slice(0, -4))
  .sort();
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const suites = wanted.length ? wanted : all;
for (const s of suites)
  if (!all.includes(s)) {
    console.error(`unknown bench suite ${s}; suites: ${all.join(', ')}`);
    process.exit(64);
  }
mkdirSync(here + 'results', { recursive: true });
const machine = {
  cpus: cpus().length,
  cpu: cpus()[0]?.model,
  memory_gib: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  node: process.version,
};

function table(rows) {
  if (!rows.length) return '';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (vals) => vals.map((v, i) => String(v ?? '').padEnd(w[i])).join('  ');
  return [line(cols), line(w.map((n) => '-'.repeat(n))), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n');
}

// each suite runs in a Node process of its own (counters, memory and leftovers stay apart)
if (!process.env.OPD_BENCH_CHILD && suites.length > 1) {
  let bad = 0;
  const t0 = Date.now();
  for (const s of suites) {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), s], {
      stdio: 'inherit',
      env: { ...process.env, OPD_BENCH_CHILD: '1' },
    });
    if (r.status !== 0) bad++;
  }
  console.log(`\nbench: ${suites.length - bad} suites ok, ${bad} failed in ${Math.round((Date.now() - t0) / 1000)} s`);
  process.exit(bad ? 1 : 0);
}

let failed = 0;
for (const s of suites) {
  const t0 = Date.now();
  process.stderr.write(`bench ${s}: running…\n`);
  try {
    const mod = await import(`./suites/${s}.mjs`);
    const result = await mod.run({ progress: (m) => process.stderr.write(`  ${s}: ${m}\n`) });
    const label = process.env.OPD_BENCH_LABEL;
    const out = {
      suite: s,
      ...(label ? { label, bin: process.env.OPD_BENCH_BIN ?? 'bin/opd.js' } : {}),
      date: new Date().toISOString(),
      machine,
      duration_s: Math.round((Date.now() - t0) / 100) / 10,
      ...result,
    };
    const name = label ? `${s}.${label.replace(/[^A-Za-z0-9_-]/g, '_')}` : s;
    writeFileSync(`${here}results/${name}.json`, JSON.stringify(out, null, 2) + '\n');
    console.log(`\n== ${name} (${out.duration_s} s) → bench/results/${name}.json`);
    console.log(table(result.rows ?? []));
    if (result.growth) console.log(`\ngrowth per plugin (10 = linear)\n${table(result.growth)}`);
    if (result.stalls) console.log(`\nevent loop while a document is read\n${table(result.stalls)}`);
    if (result.notes) console.log(`notes: ${result.notes}`);
  } catch (err) {
    failed++;
    console.error(`bench ${s} failed: ${err?.stack ?? err}`);
  }
}
process.exit(failed ? 1 : 0);
