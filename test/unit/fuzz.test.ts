/**
 * The fuzz harness in `npm test`: 2,000 property-based cases — documents derived from every
 * plugin's schema with hostile names and values, parameters and their values — through the
 * validate path and the planner, in process. No case may let anything but an OpdError escape,
 * carry a stack trace, leave a problem unlocated, or take more than 1 s. (100,000 cases:
 * `npm run bench -- fuzz`.) A failure is shrunk by fast-check to a small document.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a plain ES module shared with bench/suites/fuzz.mjs
import { caseArbitrary, loadSchemas, runCase, secretFiles } from '../fuzz/harness.mjs';
import { parseText } from '../../src/core/document.js';
import { diffAll, prepareLoaded, refreshes } from '../../src/core/engine.js';
import { buildPlan, collectEdges, formatChange, planJSON } from '../../src/core/plan.js';
import { redactPlan } from '../../src/core/report.js';
import { OpdError } from '../../src/core/errors.js';
import { clearSecretValues } from '../../src/core/secrets.js';
import { registry } from '../../src/plugins/index.js';
import type { LoadedDocument } from '../../src/core/document.js';
import type { VarSources } from '../../src/core/params.js';
import type { Settings } from '../../src/core/plugin.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const deps = {
  parseText,
  prepareLoaded: (l: LoadedDocument, s: Settings, v: VarSources) => prepareLoaded(registry, l, s, v),
  diffAll,
  collectEdges,
  buildPlan,
  refreshes,
  redactPlan,
  planJSON,
  formatChange,
  OpdError,
  formatError: (e: OpdError) => e.format(),
  clearSecretValues,
};

describe('fuzzing the validate path and the planner', () => {
  it('gives 2,000 generated documents an OpdError with a kind, a located message and no stack trace, or a plan, each within 1 s', async () => {
    const schemas = loadSchemas(join(ROOT, 'schema'));
    const { paths } = secretFiles();
    const arb = caseArbitrary(fc, schemas, paths);
    // validators and plugins load on first use: not inside a timed case
    for (const c of fc.sample(arb, { numRuns: 10, seed: 1 })) await runCase(deps, c);
    let planned = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(arb, async (c) => {
        const r = (await runCase(deps, c)) as { failure?: string; ms: number; stage?: string };
        if (r.failure) throw new Error(r.failure);
        if (r.stage === 'done') planned++;
        else refused++;
      }),
      { numRuns: 2000, seed: 20261207, endOnFailure: true },
    );
    // the generator reaches the planner, not only the validator's errors (91 of the 2,000 at this
    // seed: validate refuses `__proto__`, `constructor` and `prototype` as names anywhere, and a
    // depends_on naming an undeclared address, both frequent among the hostile strings)
    expect(planned).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(100);
  });
});
