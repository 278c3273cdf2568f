/**
 * Adding a plugin touches its folder, its schema and one registry line; state.schema.json's
 * plugins rows must follow. This keeps the three from drifting apart.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll, PLUGIN_NAMES } from '../../../src/plugins/index.js';

const SCHEMA = join(__dirname, '../../../schema');
const state = JSON.parse(readFileSync(join(SCHEMA, 'state.schema.json'), 'utf8')) as {
  properties: { plugins: { properties: Record<string, { $ref?: string; not?: object }> } };
};
const rows = state.properties.plugins.properties;
/** schema/<name>.schema.json files that are not a plugin's section */
const SHARED = ['common', 'state'];

describe('the registry, the plugin schemas and state.schema.json', () => {
  it('has a schema file and a plugins row referring to it for every registered plugin', () => {
    for (const name of PLUGIN_NAMES) {
      expect(readdirSync(SCHEMA), name).toContain(`${name}.schema.json`);
      expect(rows[name], `state.schema.json plugins.${name}`).toEqual({ $ref: `${name}.schema.json` });
    }
  });

  it('refers only to registered plugins; every other row refuses a foreign section by name', () => {
    for (const [name, row] of Object.entries(rows)) {
      if (row.$ref !== undefined) expect(PLUGIN_NAMES, `plugins.${name}`).toContain(name);
      else expect(row.not, `plugins.${name} is neither a plugin nor a refusal`).toEqual({});
    }
  });

  it('has no plugin schema file without a registered plugin', () => {
    const files = readdirSync(SCHEMA)
      .filter((f) => f.endsWith('.schema.json'))
      .map((f) => f.replace(/\.schema\.json$/, ''))
      .filter((n) => !SHARED.includes(n));
    expect(files.sort()).toEqual([...PLUGIN_NAMES].sort());
  });

  it('loads every registered plugin under the name it is registered by', async () => {
    const all = await loadAll();
    expect([...all.keys()].sort()).toEqual([...PLUGIN_NAMES].sort());
    for (const [name, p] of all) expect(p.name).toBe(name);
  });
});
