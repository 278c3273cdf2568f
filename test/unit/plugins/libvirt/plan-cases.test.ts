/** The libvirt plan cases (test/unit/plan-cases/libvirt/<case>/{current,desired,expected}.yaml). */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import plugin from '../../../../src/plugins/libvirt/index.js';
import { diffSection } from '../../../../src/core/diff.js';
import { buildPlan } from '../../../../src/core/plan.js';
import type { Obj, Plugin } from '../../../../src/core/plugin.js';

const DIR = new URL('../../plan-cases/libvirt/', import.meta.url).pathname;
const load = (c: string, f: string) => parse(readFileSync(join(DIR, c, f), 'utf8'));

describe('libvirt plan cases', () => {
  for (const c of readdirSync(DIR).sort()) {
    it(`plans ${c.replace(/-/g, ' ')}`, () => {
      const norm = (s: unknown) => plugin.normalize!(s, { remap: () => undefined }) as Obj;
      const current = norm(load(c, 'current.yaml'));
      const desired = norm(load(c, 'desired.yaml'));
      const diffs = diffSection(plugin as Plugin, desired, current, false);
      const plan = buildPlan(new Map([['libvirt', plugin as Plugin]]), diffs, plugin.edges!(desired));
      const expected = load(c, 'expected.yaml') as { address: string; action: string; summary?: string }[];
      expect(
        plan.changes.map((ch) => ({
          address: ch.address,
          action: ch.action,
          ...(expected.find((e) => e.address === ch.address && e.action === ch.action)?.summary !== undefined
            ? { summary: ch.summary }
            : {}),
        })),
      ).toEqual(expected);
    });
  }
});
