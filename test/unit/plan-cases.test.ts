/**
 * Plan cases as fixture folders: test/unit/plan-cases/<plugin>/<case>/
 *   current.yaml   the plugin section as read from the host
 *   desired.yaml   the plugin section as written in a document
 *   expected.yaml  the ordered changes: [{address, action, summary?, refused?, reason?}]; summaries
 *                  as the console shows them (stand-ins of secret fingerprints masked)
 *   options.yaml   optional: {allow_destroy: true}
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadPlugin } from '../../src/plugins/index.js';
import { diffSection } from '../../src/core/diff.js';
import { buildPlan, collectEdges, findingChanges } from '../../src/core/plan.js';
import { findings } from '../../src/plugins/checks/index.js';
import type { Obj, Plugin } from '../../src/core/plugin.js';
import { scrub } from '../../src/core/secrets.js';

const ROOT = new URL('./plan-cases/', import.meta.url).pathname;
const read = (p: string) => (parse(readFileSync(p, 'utf8')) ?? {}) as unknown;

for (const plugin of readdirSync(ROOT).sort()) {
  describe(`planning ${plugin} changes`, () => {
    for (const name of readdirSync(join(ROOT, plugin)).sort()) {
      const dir = join(ROOT, plugin, name);
      it(`plans ${name.replace(/-/g, ' ')}`, async () => {
        const p = (await loadPlugin(plugin)) as Plugin;
        let desired = read(join(dir, 'desired.yaml')) as Obj;
        if (p.normalize) desired = p.normalize(desired, { remap: () => undefined }) as Obj;
        const current = read(join(dir, 'current.yaml')) as Obj;
        const opts = existsSync(join(dir, 'options.yaml')) ? (read(join(dir, 'options.yaml')) as Obj) : {};
        const diffs = diffSection(p, desired, current, opts.allow_destroy === true);
        const plugins = new Map([[plugin, p]]);
        // checks: a failed check is a preflight finding (the pure part of its preflight), planned as a refused change
        const blocks = plugin === 'checks' ? findingChanges(plugin, findings(current, desired)) : [];
        const plan = buildPlan(plugins, diffs, collectEdges(plugins, { [plugin]: desired }), blocks);
        const expected = read(join(dir, 'expected.yaml')) as Obj[];
        const got = plan.changes.map((c) => {
          const e = expected.find((x) => x.address === c.address && x.action === c.action) ?? {};
          return {
            address: c.address,
            action: c.action,
            ...('summary' in e ? { summary: scrub(c.summary) } : {}),
            ...('reason' in e ? { reason: c.reason } : {}),
            ...('refused' in e ? { refused: !!c.refused } : {}),
          };
        });
        expect(got).toEqual(expected);
      });
    }
  });
}
