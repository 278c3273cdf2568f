#!/usr/bin/env node
// Print the plain closing line ("N passed, N failed, N skipped") from vitest's JSON report, and
// fail the run when any test was skipped, todo or focused (`.only`): a narrowed run is not a pass.
import { readFileSync } from 'node:fs';
const file = process.argv[2] ?? 'test-results.json';
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`no test report at ${file}: ${err.message}`);
  process.exit(1);
}
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
const badFiles = (r.testResults ?? []).filter((t) => t.status === 'failed').length;
if (badFiles) console.log(`(${badFiles} test files failed or did not run)`);
let bad = r.numFailedTests > 0 || badFiles > 0 || r.success === false;
if (skipped > 0) {
  bad = true;
  console.log('skipped or todo tests fail the run (no test may be skipped, in CI or anywhere):');
  for (const t of r.testResults ?? [])
    for (const a of t.assertionResults ?? [])
      if (a.status === 'pending' || a.status === 'skipped' || a.status === 'todo')
        console.log(`  ${a.status}: ${t.name} > ${a.fullName}`);
}
if (r.numTotalTests === 0) {
  bad = true;
  console.log('no test ran');
}
process.exitCode = bad ? 1 : 0;
