// Fuzz (issue 22): 100,000 property-based cases — documents derived from every plugin's schema,
// with hostile names and values, parameters and their values — through the validate path and
// the planner, in process (test/fuzz/harness.mjs; `npm test` runs 2,000 of them in
// test/unit/fuzz.test.ts). Figures: cases, failures (anything but an OpdError with a kind and a
// located message, a stack trace, a case over 1 s of CPU), the slowest case. OPD_FUZZ_CASES and
// OPD_FUZZ_SEED change the count and the seed.
import { join } from 'node:path';
import { loadavg } from 'node:os';
import fc from 'fast-check';
import { ROOT } from './lib.mjs';
import { fuzz, loadSchemas, MAX_CASE_MS } from '../../test/fuzz/harness.mjs';

const dist = (p) => import(join(ROOT, 'dist', p));

export async function run({ progress = () => {} } = {}) {
  const [doc, eng, plan, report, errors, secrets, reg] = await Promise.all([
    dist('core/document.js'),
    dist('core/engine.js'),
    dist('core/plan.js'),
    dist('core/report.js'),
    dist('core/errors.js'),
    dist('core/secrets.js'),
    dist('plugins/index.js'),
  ]);
  const deps = {
    parseText: doc.parseText,
    prepareLoaded: (l, s, v) => eng.prepareLoaded(reg.registry, l, s, v),
    diffAll: eng.diffAll,
    collectEdges: plan.collectEdges,
    buildPlan: plan.buildPlan,
    refreshes: eng.refreshes,
    redactPlan: report.redactPlan,
    planJSON: plan.planJSON,
    formatChange: plan.formatChange,
    OpdError: errors.OpdError,
    formatError: (e) => e.format(),
    clearSecretValues: secrets.clearSecretValues,
  };
  const cases = Number(process.env.OPD_FUZZ_CASES ?? 100_000);
  const seed = Number(process.env.OPD_FUZZ_SEED ?? 20261207);
  const loadBefore = loadavg()[0];
  const t0 = Date.now();
  const r = await fuzz(deps, fc, loadSchemas(join(ROOT, 'schema')), {
    cases,
    seed,
    onProgress: (n) => {
      if (n % 5000 === 0) progress(`${n} cases, ${Math.round((Date.now() - t0) / 1000)} s`);
    },
  });
  const loadAfter = loadavg()[0];
  return {
    cases: r.cases,
    seed,
    failures: r.failures,
    slowest_case: r.slowest_case,
    load: { before: loadBefore, after: loadAfter },
    rows: [
      { metric: 'cases', value: r.cases, unit: 'cases' },
      { metric: 'failures (distinct)', value: r.failures.length, unit: 'kinds' },
      { metric: 'failures (cases)', value: r.failures.reduce((n, f) => n + f.count, 0), unit: 'cases' },
      { metric: 'planned (reached the planner)', value: r.planned, unit: 'cases' },
      { metric: 'slowest case (CPU)', value: r.slowest_ms, unit: 'ms', limit: MAX_CASE_MS },
      { metric: 'slowest case (wall)', value: r.slowest_wall_ms, unit: 'ms' },
      { metric: 'mean case (CPU)', value: r.mean_ms, unit: 'ms' },
      { metric: 'load average before / after', value: `${loadBefore.toFixed(2)} / ${loadAfter.toFixed(2)}`, unit: '' },
    ],
    notes:
      r.failures.length === 0
        ? 'no failure: every case ended in a plan or an OpdError with a kind and a located message, none over 1 s of CPU'
        : `${r.failures.length} kinds of failure: see failures[] (an example document each)`,
  };
}
