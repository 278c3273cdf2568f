#!/usr/bin/env node
// After `npm run test:machine`: the per-guide coverage table of docs/examples.md and the machine tests' times,
// made from the tests' results (vitest's JSON report), test/machine/guides.json (each guide's
// items and the test that checks each) and test-results-machine/*.json (timings, the image).
// Rewrites the part of docs/examples.md between <!-- machine-coverage:start --> and
// <!-- machine-coverage:end -->, and prints it. Exit 1 when a guide item's test did not pass or an
// item names no test that exists.
//
//   node scripts/machine-report.mjs test-results-machine.json [--no-readme]   (--no-readme: print it, write nothing)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const [reportFile = 'test-results-machine.json', ...flags] = process.argv.slice(2);
const report = JSON.parse(readFileSync(reportFile, 'utf8'));
const guides = JSON.parse(readFileSync(join(ROOT, 'test/machine/guides.json'), 'utf8'));
const RESULTS = join(ROOT, 'test-results-machine');
const timing = (n) =>
  existsSync(join(RESULTS, `${n}.json`)) ? JSON.parse(readFileSync(join(RESULTS, `${n}.json`), 'utf8')) : {};
const image = timing('image');

/** example name → [{ title, status }] */
const tests = {};
for (const f of report.testResults ?? []) {
  const name = basename(f.name).replace(/\.test\.ts$/, '');
  tests[name] = (f.assertionResults ?? []).map((a) => ({ title: a.title, status: a.status }));
}

let bad = 0;
const rows = [];
const times = [];
for (const [example, g] of Object.entries(guides)) {
  if (example.startsWith('_')) continue;
  const ran = tests[example] ?? [];
  let ok = 0;
  const items = g.items.map((it) => {
    if (it.byHand) return `✗ ${it.text} (by hand: ${it.byHand})`;
    const hits = ran.filter((t) => t.title.includes(it.test));
    if (hits.length !== 1) {
      bad++;
      return `✗ ${it.text} (${hits.length ? 'several tests match' : ran.length ? 'no test matches' : 'not run'}: "${it.test}")`;
    }
    if (hits[0].status !== 'passed') {
      bad++;
      return `✗ ${it.text} (its test ${hits[0].status})`;
    }
    ok++;
    return `✓ ${it.text}`;
  });
  rows.push(`| ${g.guide} | ${ok}/${g.items.length} | ${items.join(' · ')} |`);
  const t = timing(example);
  const s = (k) => (t[k] === undefined ? '–' : `${Math.round(t[k])} s`);
  const passed = ran.filter((x) => x.status === 'passed').length;
  times.push(
    `| \`${example}.yaml\` | ${passed}/${ran.length} | ${s('boot')} | ${s('apply')} | ${s('second apply')} | ${s('reboot')} | ${s('absent')} | ${Math.round(Object.values(t).reduce((a, b) => a + b, 0))} s |`,
  );
}

const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
const files = report.testResults ?? [];
const wall = files.length
  ? Math.round((Math.max(...files.map((f) => f.endTime)) - Math.min(...files.map((f) => f.startTime))) / 1000)
  : 0;
const kvm = existsSync('/dev/kvm') && process.env.OPD_MACHINE_KVM !== '0';
const out = [
  `Made by \`npm run test:machine\` (scripts/machine-report.mjs) from the machine tests' results, ${when} UTC, ${kvm ? 'with' : 'without'} /dev/kvm in the machines.`,
  '✓ = in the document and checked by its machine test on a booted Debian 12 machine; ✗ = by hand (why), or a check that did not pass.',
  '',
  '| guide | covered | items |',
  '|---|---|---|',
  ...rows,
  '',
  `Machine times (seconds; the whole run ${wall} s with two machines at a time; the image ${image.cached ? `was in the cache (${Math.round(image.seconds)} s to find; built cold in ${Math.round(image.buildSeconds)} s` : `was built cold in ${Math.round(image.buildSeconds ?? 0)} s`}, ${image.debs ?? '?'} .debs, ${Math.round((image.repoBytes ?? 0) / 1e6)} MB${image.cached ? ')' : ''}):`,
  '',
  '| example | tests passed | boot | apply | second apply | reboot | absent | all steps |',
  '|---|---|---|---|---|---|---|---|',
  ...times,
].join('\n');

console.log(out);
if (!flags.includes('--no-readme')) {
  const readme = join(ROOT, 'docs/examples.md');
  const text = readFileSync(readme, 'utf8');
  const re = /(<!-- machine-coverage:start -->\n)[\s\S]*?(\n<!-- machine-coverage:end -->)/;
  if (!re.test(text)) {
    console.error('machine-report: docs/examples.md has no <!-- machine-coverage:start/end --> markers');
    process.exit(1);
  }
  writeFileSync(readme, text.replace(re, `$1${out}$2`));
}
if (bad) {
  console.error(`machine-report: ${bad} guide item(s) not checked by a passing machine test`);
  process.exit(1);
}
// every guide has its machine test (test/machine/package.test.ts, the Debian package's, is no guide's: npm test runs it)
for (const g of Object.keys(guides).filter((k) => !k.startsWith('_'))) {
  if (!existsSync(join(ROOT, 'test/machine', `${g}.test.ts`))) {
    console.error(`machine-report: test/machine/guides.json names ${g}, but test/machine/${g}.test.ts does not exist`);
    process.exit(1);
  }
}
