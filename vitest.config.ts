import { defineConfig } from 'vitest/config';
import { GUIDE_TESTS } from './test/machine/guide-tests.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the guides' machine tests (each example on booted Debian machines): npm run test:machine
    // (vitest.machine.config.ts); the package's machine test (test/machine/package.test.ts) stays here
    exclude: [...GUIDE_TESTS, '**/node_modules/**'],
    setupFiles: ['test/setup.ts'],
    // generous: e2e applies install packages and start guests; a machine under load must not fail them
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // integration tests share a few host daemons (systemd, libvirtd); two workers on two cores
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
    // a stray .only must never narrow a run (vitest allows it unless CI is set)
    allowOnly: false,
  },
});
