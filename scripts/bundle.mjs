#!/usr/bin/env node
// Bundle the CLI with esbuild into one CommonJS file, dist/bundle/opd.cjs, and give it a V8 code
// cache (dist/bundle/opd.cjs.cache) so that a command starts without compiling opd's code:
// bin/opd.js loads the file through vm.Script with the cache (Node 20 has no compile cache of its
// own for modules). Commands and plugins stay lazy: esbuild keeps every `import()` of opd's own
// modules as a function that runs the module on first use, so a command loads only what it names.
//
// The cache is made here, at build time, by running the bundle on the examples (validate) and
// --help: V8 then writes the bytecode of every function those runs compiled. It is never written
// at run time (a root process must not execute bytecode from a writable cache directory), and it
// is used only when dist/bundle/cache.json says it was made from this very file (size, mtime) by
// this V8; V8 itself rejects a cache of another version or flags. Paths built from
// import.meta.url stay valid: dist/bundle/ is as deep as dist/cli/.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

/**
 * Node's heavier built-in modules load on first use, not when a module that names them loads:
 * commander requires child_process (for subcommands run as programs, which opd has none of), the
 * OVSDB client net, the audit and secrets code crypto. Each import of them in the bundle is given
 * a module whose exports are getters that require the real one on first access (esbuild reads a
 * named import as a property access at the place of use). The export names are the build
 * machine's Node's; a name it lacks is not exported (as with the real module).
 */
const LAZY = [
  'child_process',
  'crypto',
  'net',
  'dgram',
  'readline',
  'stream',
  'string_decoder',
  'worker_threads',
  'tls',
  'http',
  'https',
  'zlib',
  'dns',
  'perf_hooks',
  'fs/promises',
  'stream/promises',
  'timers/promises',
  'v8',
  'vm',
  'os',
  'tty',
  'util',
  'events',
  'assert',
  'diagnostics_channel',
  'async_hooks',
  'process',
];
const nodeRequire = createRequire(import.meta.url);
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(node:)?(${LAZY.map((m) => m.replace('/', '\\/')).join('|')})$`) }, (a) => {
      const name = a.path.replace(/^node:/, '');
      // a module that is itself a function (events, stream, assert) must be the real thing
      if (a.namespace === 'lazy-builtin' || typeof nodeRequire(`node:${name}`) === 'function') return undefined;
      return { path: name, namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => {
      const names = Object.keys(nodeRequire(`node:${a.path}`)).filter((k) => k !== 'default' && k !== '__esModule');
      const get = names.map(
        (k) => `  ${JSON.stringify(k)}: { get: () => real()[${JSON.stringify(k)}], enumerable: true },`,
      );
      return {
        contents: [
          `let m;`,
          `const real = () => (m ??= require('node:${a.path}'));`,
          `Object.defineProperties(module.exports, {`,
          ...get,
          `});`,
        ].join('\n'),
        loader: 'js',
      };
    });
  },
};

const root = new URL('../', import.meta.url).pathname;
const out = root + 'dist/bundle';
rmSync(out, { recursive: true, force: true });
const t = Date.now();
const r = await build({
  entryPoints: { opd: root + 'src/cli/main.ts' },
  outdir: out,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // one function around the whole file: bin/opd.js compiles it as it is (no copy to wrap it)
  banner: {
    js: "(function (exports, require, module, __filename, __dirname) { const __opdImportMetaUrl = require('node:url').pathToFileURL(__filename).href;",
  },
  footer: { js: '})' },
  define: { 'import.meta.url': '__opdImportMetaUrl' },
  // pino starts its transports in worker threads from files of its own package (and is required
  // only when a command logs: src/cli/common.ts); dbus-next requires optional packages (x11,
  // usocket) that are not installed; etcd3 (gRPC) and prom-client load files of their own
  // packages at run time (__dirname: .proto files)
  external: [
    'pino',
    'thread-stream',
    'pino-pretty',
    'dbus-next',
    'etcd3',
    '@grpc/grpc-js',
    '@grpc/proto-loader',
    'protobufjs',
    'prom-client',
  ],
  charset: 'ascii', // bin/opd.js reads the file as latin1: a one-byte string, no UTF-8 decoding
  // a vm.Script has no module loader for import(): an import() of an external package or of a
  // built-in module (dbus-next, node:fs) becomes a require() (else "A dynamic import callback was
  // not specified" at run time: opd status, the daemon's D-Bus)
  supported: { 'dynamic-import': false },
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  plugins: [lazyBuiltins],
});
// the daemon parses documents in a worker thread (src/core/document-worker.ts): its script, beside
// the bundle, is a plain CommonJS file
await build({
  entryPoints: { 'parse-worker': root + 'src/core/parse-worker.ts' },
  outdir: out,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  banner: { js: "const __opdImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__opdImportMetaUrl' },
  external: [
    'pino',
    'thread-stream',
    'pino-pretty',
    'dbus-next',
    'etcd3',
    '@grpc/grpc-js',
    '@grpc/proto-loader',
    'protobufjs',
    'prom-client',
  ],
  legalComments: 'none',
  logLevel: 'warning',
});
const bytes = Object.values(r.metafile.outputs).reduce((n, o) => n + (o.bytes ?? 0), 0);
const ms = Date.now() - t;

// the code cache: run the bundle as a user does, then write what V8 compiled. The commands:
// validate of every example; --help; and, where ovsdb-server is installed (CI, the bench), a
// first apply, a no-op apply and a diff against a private database of this build's own
const cache = out + '/opd.cjs.cache';
const examples = readdirSync(root + 'examples')
  .filter((f) => /\.(ya?ml|json)$/.test(f))
  .map((f) => root + 'examples/' + f);
const commands = [['validate', ...examples], ['--help']];
const env = { ...process.env, OPD_WRITE_CODE_CACHE: cache, OPD_LOG_LEVEL: 'silent' };
let ovsDir;
if (spawnSync('ovsdb-server', ['--version']).status === 0) {
  ovsDir = mkdtempSync(join(tmpdir(), 'opd-build-ovs-'));
  const up = spawnSync('bash', [root + 'scripts/backends/ovs.sh', 'up', ovsDir], { encoding: 'utf8' });
  if (up.status === 0) {
    const doc = join(ovsDir, 'train.json');
    writeFileSync(
      doc,
      JSON.stringify({
        version: 1,
        plugins: { ovs: { bridges: { opdtrain0: { ports: { opdtrainp0: { type: 'internal', tag: 10 } } } } } },
      }),
    );
    Object.assign(env, { OPD_OVS_DB: `unix:${ovsDir}/db.sock`, OPD_AUDIT_LOG: join(ovsDir, 'audit.jsonl') });
    commands.push(['apply', doc], ['apply', doc], ['diff', doc]);
  }
}
try {
  const res = spawnSync(process.execPath, [root + 'bin/opd.js'], {
    env: { ...env, OPD_CODE_CACHE_TRAIN: JSON.stringify(commands) },
    encoding: 'utf8',
  });
  if (res.error || !statSync(cache, { throwIfNoEntry: false }))
    throw new Error(`no code cache written: ${res.error?.message ?? res.stderr.slice(-500)}`);
} finally {
  if (ovsDir) spawnSync('bash', [root + 'scripts/backends/ovs.sh', 'down', ovsDir]);
}
const st = statSync(out + '/opd.cjs');
writeFileSync(
  out + '/cache.json',
  JSON.stringify({
    size: st.size,
    mtimeMs: st.mtimeMs,
    v8: process.versions.v8,
    node: process.version,
    arch: process.arch,
  }) + '\n',
);
console.error(
  `bundled the CLI into dist/bundle/opd.cjs, ${Math.round(bytes / 1024)} KiB with its map, in ${ms} ms; code cache ${Math.round(statSync(cache).size / 1024)} KiB`,
);
