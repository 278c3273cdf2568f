#!/usr/bin/env node
// The generated documentation (src/cli/docs/): run after tsc.
//   node scripts/gen-docs.mjs man     the man pages into dist/man/ (part of npm run build)
//   node scripts/gen-docs.mjs docs    the generated regions of docs/ (npm run docs; commit the result)
// SOURCE_DATE_EPOCH sets the man pages' date (reproducible packages); default: package.json's mtime.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const root = new URL('../', import.meta.url).pathname;
const what = process.argv[2] ?? 'man';
const { gather } = await import(root + 'dist/cli/docs/sources.js');
const pages = await import(root + 'dist/cli/docs/pages.js');
const s = await gather();

if (what === 'man') {
  const epoch = process.env.SOURCE_DATE_EPOCH
    ? Number(process.env.SOURCE_DATE_EPOCH) * 1000
    : statSync(root + 'package.json').mtimeMs;
  const date = new Date(epoch).toISOString().slice(0, 10);
  mkdirSync(root + 'dist/man', { recursive: true });
  const man = pages.manPages(s, { version: s.version, date });
  for (const [f, text] of Object.entries(man)) writeFileSync(root + 'dist/man/' + f, text);
  // the command tree for shell completion (src/cli/completion.ts: commandsDoc)
  const { commandTree } = await import(root + 'dist/cli/main.js');
  const { commandsJson } = await import(root + 'dist/cli/completion.js');
  writeFileSync(root + 'dist/commands.json', commandsJson(s.version, await commandTree()));
  console.error(`man pages: ${Object.keys(man).join(', ')} in dist/man/; the command tree in dist/commands.json`);
} else if (what === 'docs') {
  let changed = 0;
  for (const page of Object.keys(pages.regions(s))) {
    const file = root + page;
    const text = existsSync(file) ? readFileSync(file, 'utf8') : pages.skeleton(page, s);
    const out = pages.render(page, text, s);
    if (out !== text || !existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, out);
      changed++;
      console.error(`wrote ${page}`);
    }
  }
  console.error(`docs: ${changed} page${changed === 1 ? '' : 's'} regenerated`);
} else {
  console.error('usage: gen-docs.mjs man|docs');
  process.exit(64);
}
