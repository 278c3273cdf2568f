/**
 * Once per `npm run test:machine`: build the machine image (or find it in the cache) and write
 * what it took to test-results-machine/image.json, where each test file finds it. At the end, the
 * examples must be byte for byte what they were at the start: no test edits an example (each
 * applies the shipped file), and a run during which one changed fails.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureImage, EXAMPLES, RESULTS, sha256 } from './harness.js';

/** sha256 of every file of examples/ (and examples/nixos/), by name. */
function examplesDigest(dir = EXAMPLES, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.isDirectory()) Object.assign(out, examplesDigest(join(dir, e.name), `${prefix}${e.name}/`));
    else out[prefix + e.name] = sha256(readFileSync(join(dir, e.name)));
  }
  return out;
}

export default async function setup(): Promise<() => void> {
  rmSync(RESULTS, { recursive: true, force: true });
  mkdirSync(RESULTS, { recursive: true });
  const before = examplesDigest();
  const image = await ensureImage();
  writeFileSync(join(RESULTS, 'image.json'), JSON.stringify(image, null, 2) + '\n');
  return () => {
    const after = examplesDigest();
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])]
      .filter((f) => before[f] !== after[f])
      .sort();
    if (changed.length)
      throw new Error(
        `examples changed during the machine tests (a test must apply the shipped file, never edit it): ${changed.map((f) => `examples/${f}`).join(', ')}`,
      );
  };
}
