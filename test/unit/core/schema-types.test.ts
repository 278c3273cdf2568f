/** The section types that the build generates from schema/*.json (scripts/gen-schema-types.mjs). */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
// @ts-expect-error a build script without type declarations
import { generate } from '../../../scripts/gen-schema-types.mjs';

const ROOT = join(import.meta.dirname, '../../..');

describe('generated section types', () => {
  it('give every plugin with a schema a section type that names each key of its schema', async () => {
    const files = (await generate()) as Map<string, string>;
    const plugins = readdirSync(join(ROOT, 'src/plugins'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect([...files.keys()].map((f) => f.split('/').slice(-2)[0]).sort()).toEqual(plugins);
    for (const p of plugins) {
      const schema = JSON.parse(readFileSync(join(ROOT, 'schema', `${p}.schema.json`), 'utf8')) as {
        properties: Record<string, unknown>;
      };
      const ts = files.get(join(ROOT, 'src/plugins', p, 'section.gen.ts'))!;
      expect(ts).toContain(`export interface ${p[0].toUpperCase()}${p.slice(1)}Doc {`);
      for (const key of Object.keys(schema.properties))
        expect(ts, `${p}: ${key}`).toMatch(new RegExp(`^  '?${key}'?\\??:`, 'm'));
    }
  }, 120_000);
});
