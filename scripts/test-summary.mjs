#!/usr/bin/env node
// Print the plain closing line ("N passed, N failed, N skipped") from vitest's JSON report.
import { readFileSync } from 'node:fs';
const file = process.argv[2] ?? 'test-results.json';
try {
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  const badFiles = (r.testResults ?? []).filter((t) => t.status === 'failed').length;
  if (badFiles) console.log(`(${badFiles} test files failed or did not run)`);
} catch (err) {
  console.log(`no test report at ${file}: ${err.message}`);
  process.exitCode = 1;
}
