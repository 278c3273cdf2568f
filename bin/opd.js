#!/usr/bin/env node
// The opd command (CommonJS: bin/package.json; a CommonJS entry starts faster than an ES module).
// Runs the esbuild bundle (dist/bundle/opd.cjs, `npm run build`) with the V8 code cache the build
// made for it (scripts/bundle.mjs), and falls back to the tsc output (dist/cli/main.js) when
// there is no bundle.
'use strict';
const { readFileSync, statSync, writeFileSync, writeSync } = require('node:fs');
const { join } = require('node:path');

const argv = process.argv;
const root = join(__dirname, '..');

// `opd --version` answers without loading anything (as `opd -V`)
if (argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V')) {
  writeSync(1, JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version + '\n');
  process.exit(0);
}

/** The bundle's exports and its script, or undefined when it was not built. */
function bundle() {
  const file = join(root, 'dist/bundle/opd.cjs');
  let source;
  try {
    source = readFileSync(file, 'latin1'); // ASCII (esbuild charset: ascii): a one-byte string
  } catch (err) {
    if (err && err.code === 'ENOENT') return undefined;
    throw err;
  }
  let cachedData;
  if (!process.env.OPD_WRITE_CODE_CACHE)
    try {
      // made by the build from this very file by this V8 on this CPU architecture (V8 checks its
      // version and flags but not the architecture: an x64 cache crashes V8 on arm64)
      const meta = JSON.parse(readFileSync(join(root, 'dist/bundle/cache.json'), 'utf8'));
      if (
        meta.size === source.length &&
        meta.v8 === process.versions.v8 &&
        meta.arch === process.arch &&
        meta.mtimeMs === statSync(file).mtimeMs
      )
        cachedData = readFileSync(file + '.cache');
    } catch {
      /* no cache: compile */
    }
  const vm = require('node:vm');
  const script = new vm.Script(source, { filename: file, cachedData });
  const m = { exports: {} };
  script.runInThisContext()(m.exports, require('node:module').createRequire(file), m, file, join(root, 'dist/bundle'));
  return { main: m.exports.main, script };
}

/** The build's training run: every command of OPD_CODE_CACHE_TRAIN (a JSON list of argument lists), in turn. */
async function train(main) {
  for (const args of JSON.parse(process.env.OPD_CODE_CACHE_TRAIN)) await main([argv[0], argv[1], ...args]);
  return 0;
}

const b = bundle();
(b ? Promise.resolve(b) : import('../dist/cli/main.js'))
  .then(({ main }) => (b && process.env.OPD_CODE_CACHE_TRAIN ? train(main) : main(argv)))
  .then(
    (code) => {
      process.exitCode = code;
      // the build's training run: keep what V8 compiled (scripts/bundle.mjs)
      if (b && process.env.OPD_WRITE_CODE_CACHE)
        writeFileSync(process.env.OPD_WRITE_CODE_CACHE, b.script.createCachedData());
    },
    (err) => {
      process.stderr.write(`opd: internal error: ${err && err.message ? err.message : err}\n`);
      process.exitCode = 70;
    },
  );
