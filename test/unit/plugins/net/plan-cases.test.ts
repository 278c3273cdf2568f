/** The net, firewall and checks plan-case folders, run through the core's diff and each plugin's plan. */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { diffSection } from '../../../../src/core/diff.js';
import { loadPlugin } from '../../../../src/plugins/index.js';
import type { Obj } from '../../../../src/core/plugin.js';
import { findings } from '../../../../src/plugins/checks/index.js';

const ROOT = join(import.meta.dirname, '../../plan-cases');

for (const plugin of ['net', 'firewall', 'checks']) {
  describe(`${plugin} plan cases`, () => {
    for (const c of readdirSync(join(ROOT, plugin)).sort()) {
      it(c.replace(/-/g, ' '), async () => {
        const p = await loadPlugin(plugin);
        const read = (f: string) => parse(readFileSync(join(ROOT, plugin, c, f), 'utf8')) as Obj;
        const desired = (
          p.normalize ? p.normalize(read('desired.yaml'), { remap: () => undefined }) : read('desired.yaml')
        ) as Obj;
        const diffs = diffSection(p, desired, read('current.yaml'), false);
        // checks plan nothing: a failed check is a preflight finding, shown as a refused `check` change
        const changes =
          plugin === 'checks'
            ? findings(read('current.yaml'), desired).map((f) => ({
                address: f.address,
                action: 'check',
                summary: `FAILED ${f.message}`,
              }))
            : diffs.filter((d) => d.action !== 'noop').flatMap((d) => p.plan(d));
        const expected = read('expected.yaml') as unknown as { address: string; action: string; summary?: string }[];
        expect(
          changes.map((ch) => ({
            address: ch.address,
            action: ch.action,
            ...(expected.find((e) => e.address === ch.address)?.summary !== undefined ? { summary: ch.summary } : {}),
          })),
        ).toEqual(expected);
      });
    }
  });
}
