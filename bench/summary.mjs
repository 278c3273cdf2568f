#!/usr/bin/env node
// Markdown tables of bench/results/*.json (for the benchmark pages of the docs).
//   node bench/summary.mjs [suite…]   only those suites (with their <suite>.before.json)
// A suite with a <suite>.before.json (bench/acceptance.sh) also gets a before → after table.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const dir = fileURLToPath(new URL('./results/', import.meta.url));
const only = process.argv.slice(2);
const md = (cols, rows) =>
  [
    `| ${cols.join(' | ')} |`,
    `| ${cols.map(() => '---').join(' | ')} |`,
    ...rows.map((x) => `| ${cols.map((c) => String(x[c] ?? '').replace(/\|/g, '\\|')).join(' | ')} |`),
  ].join('\n');
const results = readdirSync(dir)
  .filter((x) => x.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(dir + f, 'utf8')))
  .filter((r) => !only.length || only.includes(r.suite))
  // a suite's own results first, then its labelled ones (before)
  .sort((a, b) => (a.suite < b.suite ? -1 : a.suite > b.suite ? 1 : (a.label ?? '') < (b.label ?? '') ? -1 : 1));
for (const r of results) {
  const rows = r.rows ?? [];
  if (!rows.length) continue;
  const cols = [...new Set(rows.flatMap((x) => Object.keys(x)))];
  const label = r.label ? `, ${r.label}: ${r.bin}` : '';
  console.log(`#### ${r.suite} (${r.date?.slice(0, 16)}Z, ${r.duration_s} s${label})\n`);
  console.log(md(cols, rows));
  if (r.growth?.length) {
    const gc = [...new Set(r.growth.flatMap((x) => Object.keys(x)))];
    console.log(`\ngrowth per plugin (10 = linear, target <= 12):\n\n${md(gc, r.growth)}`);
  }
  if (r.stalls?.length) {
    const sc = [...new Set(r.stalls.flatMap((x) => Object.keys(x)))];
    console.log(`\nevent loop while a document is read:\n\n${md(sc, r.stalls)}`);
  }
  if (r.notes) console.log(`\n${r.notes}`);
  const beforeFile = `${dir}${r.suite}.before.json`;
  if (!r.label && existsSync(beforeFile)) {
    const b = JSON.parse(readFileSync(beforeFile, 'utf8'));
    const byRow = new Map((b.rows ?? []).map((x) => [x.row, x]));
    const both = rows.map((x) => {
      const y = byRow.get(x.row) ?? {};
      return {
        row: x.row,
        target: x.target,
        before_ms: y.opd_ms,
        before_ratio: y.ratio,
        after_ms: x.opd_ms,
        after_ratio: x.ratio,
        floor_ms: x.floor_ms,
        meets: x.meets,
        load_before: `${y.load_before ?? ''}/${y.load_after ?? ''}`,
        load_after: `${x.load_before}/${x.load_after}`,
      };
    });
    console.log(`\nbefore (${b.bin}, ${b.date?.slice(0, 16)}Z) → after:\n\n${md(Object.keys(both[0]), both)}`);
  }
  console.log('');
}
