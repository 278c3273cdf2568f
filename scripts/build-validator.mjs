#!/usr/bin/env node
// Precompile the state-document validators with ajv's standalone code generation, so that a CLI
// run compiles no schema and loads only what the document names: dist/validators/state.cjs
// checks the document's envelope (version, the plugins map; each section accepted as is) and
// dist/validators/<plugin>.cjs one plugin's section. dist/validators/manifest.json holds the
// hash of the schema files they were made from, and each file's size and mtime (a cheap
// freshness check); validate.ts compiles at run time when the schemas have changed since.
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import standaloneCode from 'ajv/dist/standalone/index.js';

const dir = new URL('../schema/', import.meta.url).pathname;
const out = new URL('../dist/validators/', import.meta.url).pathname;
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.schema.json'))
  .sort();
const hash = createHash('sha256');
const schemas = new Map();
const stats = {};
for (const f of files) {
  const text = readFileSync(dir + f, 'utf8');
  hash.update(f + '\0' + text + '\0');
  schemas.set(f, JSON.parse(text));
  const st = statSync(dir + f);
  stats[f] = [st.size, st.mtimeMs];
}
const KEYWORDS = ['x-opd-secret', 'x-opd-hint', 'x-opd-argv', 'x-opd-text'];
function ajv() {
  const a = new Ajv2020({
    allErrors: true,
    strict: true,
    verbose: true,
    allowUnionTypes: true,
    code: { source: true },
  });
  for (const k of KEYWORDS) a.addKeyword({ keyword: k });
  return a;
}

/** The state schema with every plugin section accepted as is (each has a validator of its own). */
export function envelope(state) {
  const s = structuredClone(state);
  const props = s.properties.plugins.properties;
  // a plugin section ($ref) has a validator of its own; inline entries (op-dbus plugins opd
  // refuses, with their hints) stay in the envelope
  for (const [k, v] of Object.entries(props)) if (typeof v?.$ref === 'string') props[k] = true;
  return s;
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const state = schemas.get('state.schema.json');
const write = (name, a, validate) => writeFileSync(out + name + '.cjs', standaloneCode(a, validate) + '\n');
{
  const a = ajv();
  write('state', a, a.compile(envelope(state)));
}
const plugins = {};
for (const [name, ref] of Object.entries(state.properties.plugins.properties)) {
  const file = ref?.$ref;
  if (typeof file !== 'string') continue;
  const a = ajv();
  for (const [f, s] of schemas) if (f !== 'state.schema.json') a.addSchema(s);
  write(name, a, a.getSchema(schemas.get(file).$id));
  plugins[name] = file;
}
writeFileSync(out + 'manifest.json', JSON.stringify({ hash: hash.digest('hex'), stats, plugins }, null, 1) + '\n');
console.error(`precompiled validators: the envelope and ${Object.keys(plugins).length} plugin sections`);
