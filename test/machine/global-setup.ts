/**
 * Once per `npm run test:machine`: build the machine image (or find it in the cache) and write
 * what it took to test-results-machine/image.json, where each test file finds it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureImage, RESULTS } from './harness.js';

export default async function setup(): Promise<void> {
  rmSync(RESULTS, { recursive: true, force: true });
  mkdirSync(RESULTS, { recursive: true });
  const image = await ensureImage();
  writeFileSync(join(RESULTS, 'image.json'), JSON.stringify(image, null, 2) + '\n');
}
