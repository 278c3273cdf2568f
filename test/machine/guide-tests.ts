/**
 * The guides' machine tests: test/machine/<example>.test.ts for each guide of guides.json. `npm run
 * test:machine` runs exactly these (vitest.machine.config.ts) and `npm test` leaves them out
 * (vitest.config.ts); the other machine test, package.test.ts (the Debian package), runs in npm test.
 */
import { readFileSync } from 'node:fs';

const guides = JSON.parse(readFileSync(new URL('./guides.json', import.meta.url), 'utf8')) as Record<string, unknown>;

export const GUIDE_TESTS = Object.keys(guides)
  .filter((k) => !k.startsWith('_'))
  .map((k) => `test/machine/${k}.test.ts`);
