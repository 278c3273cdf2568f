#!/usr/bin/env node
// Markdown tables of bench/results/*.json (for README's performance section).
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const dir = fileURLToPath(new URL('./results/', import.meta.url));
for (const f of readdirSync(dir)
  .filter((x) => x.endsWith('.json'))
  .sort()) {
  const r = JSON.parse(readFileSync(dir + f, 'utf8'));
  const rows = r.rows ?? [];
  if (!rows.length) continue;
  const cols = [...new Set(rows.flatMap((x) => Object.keys(x)))];
  console.log(`#### ${r.suite} (${r.date?.slice(0, 16)}Z, ${r.duration_s} s)\n`);
  console.log(`| ${cols.join(' | ')} |\n| ${cols.map(() => '---').join(' | ')} |`);
  for (const x of rows) console.log(`| ${cols.map((c) => String(x[c] ?? '').replace(/\|/g, '\\|')).join(' | ')} |`);
  if (r.growth?.length) {
    const gc = [...new Set(r.growth.flatMap((x) => Object.keys(x)))];
    console.log(
      `\ngrowth per plugin (10 = linear, target <= 12):\n\n| ${gc.join(' | ')} |\n| ${gc.map(() => '---').join(' | ')} |`,
    );
    for (const x of r.growth) console.log(`| ${gc.map((c) => String(x[c] ?? '')).join(' | ')} |`);
  }
  if (r.stalls?.length) {
    const sc = [...new Set(r.stalls.flatMap((x) => Object.keys(x)))];
    console.log(
      `\nevent loop while a document is read:\n\n| ${sc.join(' | ')} |\n| ${sc.map(() => '---').join(' | ')} |`,
    );
    for (const x of r.stalls) console.log(`| ${sc.map((c) => String(x[c] ?? '')).join(' | ')} |`);
  }
  if (r.notes) console.log(`\n${r.notes}`);
  console.log('');
}
