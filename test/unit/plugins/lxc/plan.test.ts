import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import plugin from '../../../../src/plugins/lxc/index.js';
import { diffSection } from '../../../../src/core/diff.js';
import { buildPlan } from '../../../../src/core/plan.js';
import type { Obj } from '../../../../src/core/plugin.js';

const CASES = fileURLToPath(new URL('../../plan-cases/lxc/', import.meta.url));

interface Expected {
  address: string;
  action: string;
  summary?: string;
  refused?: boolean;
}

describe('lxc plan cases (test/unit/plan-cases/lxc)', () => {
  for (const name of readdirSync(CASES).sort()) {
    it(name.replace(/-/g, ' '), () => {
      const load = (f: string) => parse(readFileSync(join(CASES, name, f), 'utf8'));
      const current = load('current.yaml') as Obj;
      const desired = plugin.normalize!(load('desired.yaml'), { remap: () => undefined }) as Obj;
      const expected = load('expected.yaml') as Expected[];
      const diffs = diffSection(plugin, desired, current, false);
      const plan = buildPlan(new Map([['lxc', plugin]]), diffs, plugin.edges!(desired));
      const got = plan.changes.map((c) => {
        const e = expected.find((x) => x.address === c.address && x.action === c.action);
        return {
          address: c.address,
          action: c.action,
          ...(e?.summary !== undefined ? { summary: c.summary } : {}),
          ...(e?.refused !== undefined ? { refused: !!c.refused } : {}),
        };
      });
      expect(got).toEqual(expected);
    });
  }
});

describe('lxc destroy permission', () => {
  it('marks a destroy as refused unless allow_destroy is given', () => {
    const current = { containers: { c1: { template: 'busybox', running: false } } };
    const plan = (desired: Obj) =>
      buildPlan(new Map([['lxc', plugin]]), diffSection(plugin, desired, current, false), []).changes;
    expect(plan({ containers: { c1: { state: 'absent' } } })[0].refused).toContain('allow_destroy');
    expect(plan({ containers: { c1: { state: 'absent', allow_destroy: true } } })[0].refused).toBeUndefined();
    expect(plan({ containers: { c1: { state: 'absent' } } })[0].destructive).toBe(true);
  });
});
