import { defineConfig } from 'vitest/config';
import { GUIDE_TESTS } from './test/machine/guide-tests.js';

// `npm run test:machine`: each example as shipped on a booted Debian 12 machine (test/machine/).
export default defineConfig({
  test: {
    include: GUIDE_TESTS,
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/machine/global-setup.ts'],
    // an example installs its packages, boots and reboots a machine: minutes, on a loaded machine more
    testTimeout: 1_200_000,
    hookTimeout: 1_200_000,
    pool: 'forks',
    // two machines at a time on two cores (dpkg waits on the disk as much as on the CPU)
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
    allowOnly: false,
  },
});
