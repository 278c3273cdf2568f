#!/usr/bin/env node
// Bundle the CLI with esbuild (dist/bundle/): one module graph instead of hundreds of files to
// resolve and load at start-up. Code splitting keeps every plugin and command in a chunk of its
// own, loaded only when a document names it (src/plugins/index.ts) or the command runs
// (src/cli/main.ts). bin/opd.js prefers the bundle and falls back to dist/cli/main.js (tsc).
// Paths built from import.meta.url stay valid: dist/bundle/ is as deep as dist/cli/.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

const root = new URL('../', import.meta.url).pathname;
const out = root + 'dist/bundle';
rmSync(out, { recursive: true, force: true });
const t = Date.now();
const r = await build({
  entryPoints: { main: root + 'src/cli/main.ts' },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: '[name]-[hash]',
  // CommonJS dependencies call require(): give the ESM bundle one
  banner: {
    js: "import { createRequire as __opdCreateRequire } from 'node:module'; const require = __opdCreateRequire(import.meta.url);",
  },
  // pino starts its transports in worker threads from files of its own package; dbus-next
  // requires optional packages (x11, usocket) that are not installed; etcd3 (gRPC) and
  // prom-client load files of their own packages at run time (__dirname: .proto files)
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
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(r.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.error(
  `bundled the CLI into ${Object.keys(r.metafile.outputs).filter((f) => f.endsWith('.js')).length} files, ${Math.round(bytes / 1024)} KiB, in ${Date.now() - t} ms`,
);
