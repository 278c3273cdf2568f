#!/usr/bin/env node
// The opd command. Prefers the esbuild bundle (dist/bundle, `npm run build`), falls back to the
// tsc output (dist/cli). Node >= 22.1 also keeps a compile cache of the bundle's code.
import module from 'node:module';

if (typeof module.enableCompileCache === 'function' && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  try {
    module.enableCompileCache();
  } catch {
    /* a cache directory that cannot be written: run without it */
  }
}

let main;
try {
  ({ main } = await import('../dist/bundle/main.js'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/bundle/main.js')) throw err;
  ({ main } = await import('../dist/cli/main.js'));
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`opd: internal error: ${err && err.message ? err.message : err}\n`);
    process.exitCode = 70;
  },
);
