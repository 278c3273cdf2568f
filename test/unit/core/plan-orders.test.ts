/**
 * A plugin that says `ordersAfterOthers: false` is believed by the edge computation (it does not
 * plan each resource to find orders after other resources): hold each such plugin to it, on
 * every example that uses it and on generated sections of its schema.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { loadSchemas, schemaArbitraries } from '../../fuzz/harness.mjs';
import { planOrderEdges } from '../../../src/core/plan.js';
import { isObj } from '../../../src/core/diff.js';
import { loadAll } from '../../../src/plugins/index.js';
import type { Obj, Plugin } from '../../../src/core/plugin.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Every order edge a create of each resource of the section gives. */
function orders(p: Plugin, section: unknown) {
  const out = [];
  if (!isObj(section)) return [];
  for (const collection of p.collections) {
    const coll = section[collection];
    if (!isObj(coll)) continue;
    for (const [res, spec] of Object.entries(coll))
      if (isObj(spec) && spec.state !== 'absent') out.push(...planOrderEdges(p, collection, res, spec as Obj));
  }
  return out;
}

describe('plugins that say their plans order changes only after their own resource', async () => {
  const plugins = [...(await loadAll()).values()].filter((p) => p.ordersAfterOthers === false);
  const schemas = loadSchemas(join(ROOT, 'schema'));
  const clean = schemaArbitraries(fc, schemas.files, { hostile: 0 });

  it('are at least the ovs plugin (the one whose 10,000-port documents need it)', () => {
    expect(plugins.map((p) => p.name)).toContain('ovs');
  });

  for (const p of plugins) {
    it(`${p.name}: no example's resource is ordered after another resource`, () => {
      let resources = 0;
      for (const f of readdirSync(join(ROOT, 'examples')).filter((f) => /\.(ya?ml|json)$/.test(f))) {
        const doc = parse(readFileSync(join(ROOT, 'examples', f), 'utf8')) as { plugins?: Record<string, unknown> };
        const section = doc.plugins?.[p.name];
        if (!isObj(section)) continue;
        for (const c of p.collections) resources += isObj(section[c]) ? Object.keys(section[c] as Obj).length : 0;
        expect(orders(p, section), f).toEqual([]);
      }
      expect(resources).toBeGreaterThan(0);
    });

    it(`${p.name}: no generated section's resource is ordered after another resource`, () => {
      const file = schemas.plugins.find(([name]) => name === p.name)![1];
      fc.assert(
        fc.property(clean.arbOf(schemas.files.get(file), file, 0), (section: unknown) => {
          expect(orders(p, section)).toEqual([]);
        }),
        { numRuns: 300 },
      );
    });
  }
});
