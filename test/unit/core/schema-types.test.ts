/** The section types under src/plugins/<name>/section.gen.ts are generated from schema/*.json and committed: they must match a fresh generation. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
// @ts-expect-error a build script without type declarations
import { generate } from '../../../scripts/gen-schema-types.mjs';

describe('generated section types', () => {
  it('match what the schemas generate now (run npm run gen:types after editing a schema)', async () => {
    const files = (await generate()) as Map<string, string>;
    expect(files.size).toBeGreaterThan(10);
    for (const [file, ts] of files) expect(readFileSync(file, 'utf8'), file).toBe(ts);
  }, 120_000);
});
