#!/usr/bin/env node
/**
 * Generate the TypeScript type of every plugin section from its schema (schema/<name>.schema.json →
 * src/plugins/<name>/section.gen.ts) with json-schema-to-typescript, so that schema and code
 * cannot drift. The build (and npm run typecheck) runs it first; the files are not committed
 * (.gitignore): they are always what the schemas say, and generated code stays out of review
 * and out of the duplicate count. Run it once after a fresh clone before a bare `tsc --noEmit`
 * (npm run gen:types). vitest needs nothing: the plugins import these types with `import type`.
 *   node scripts/gen-schema-types.mjs          write them (only the ones that changed)
 *   node scripts/gen-schema-types.mjs --check  compare only (exit 1 and name the stale files)
 */
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile } from 'json-schema-to-typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCHEMA = join(ROOT, 'schema');
const common = JSON.parse(readFileSync(join(SCHEMA, 'common.schema.json'), 'utf8'));

/** `common.schema.json#/$defs/x` → `#/$defs/common_x`, with common's $defs copied in (no file access at generation). */
function inlineCommon(schema) {
  const s = structuredClone(schema);
  const walk = (v) => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    if (typeof v.$ref === 'string' && v.$ref.startsWith('common.schema.json#/$defs/'))
      v.$ref = `#/$defs/common_${v.$ref.slice('common.schema.json#/$defs/'.length)}`;
    Object.values(v).forEach(walk);
  };
  walk(s);
  s.$defs = { ...(s.$defs ?? {}) };
  const local = (v) => {
    if (Array.isArray(v)) return v.forEach(local);
    if (!v || typeof v !== 'object') return;
    if (typeof v.$ref === 'string' && v.$ref.startsWith('#/$defs/'))
      v.$ref = `#/$defs/common_${v.$ref.slice('#/$defs/'.length)}`;
    Object.values(v).forEach(local);
  };
  for (const [k, v] of Object.entries(common.$defs ?? {})) {
    const d = structuredClone(v);
    local(d);
    delete d.title;
    s.$defs[`common_${k}`] = d;
  }
  delete s.$id;
  return s;
}

const COMBINATORS = ['anyOf', 'oneOf', 'allOf'];

/** A branch that only says which of the parent's properties must (not) be there or what values they take. */
function constraintOnly(branch, props) {
  if (!branch || typeof branch !== 'object') return false;
  return Object.entries(branch).every(([k, v]) => {
    if (k === 'required') return v.every((p) => p in props);
    if (k === 'properties') return Object.keys(v).every((p) => p in props);
    if (k === 'not') return constraintOnly(v, props);
    if (COMBINATORS.includes(k)) return v.every((b) => constraintOnly(b, props));
    return k.startsWith('x-opd-') || k === 'description';
  });
}

/**
 * Drop the combinators of an object schema that only constrain its own properties (argv or shell,
 * a symlink has no content): they are the validator's business, and as TypeScript they turn every
 * spec into an intersection of unions that no plan can build step by step.
 */
function dropConstraints(v) {
  if (Array.isArray(v)) return v.forEach(dropConstraints);
  if (!v || typeof v !== 'object') return;
  if (v.properties)
    for (const k of COMBINATORS)
      if (Array.isArray(v[k]) && v[k].every((b) => constraintOnly(b, v.properties))) delete v[k];
  Object.values(v).forEach(dropConstraints);
}

function typeName(plugin) {
  return plugin[0].toUpperCase() + plugin.slice(1) + 'Doc';
}

export async function generate() {
  const out = new Map();
  for (const f of readdirSync(SCHEMA).sort()) {
    const m = /^([a-z]+)\.schema\.json$/.exec(f);
    if (!m || m[1] === 'state' || m[1] === 'common') continue;
    const plugin = m[1];
    if (!existsSync(join(ROOT, 'src/plugins', plugin))) continue;
    const schema = inlineCommon(JSON.parse(readFileSync(join(SCHEMA, f), 'utf8')));
    dropConstraints(schema);
    schema.title = typeName(plugin);
    const ts = await compile(schema, typeName(plugin), {
      cwd: SCHEMA,
      bannerComment: `/* Generated from schema/${f} by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */`,
      additionalProperties: false,
      // minItems/maxItems are the validator's business: as tuples ([string, string, string]) they make every list awkward
      ignoreMinAndMaxItems: true,
      unreachableDefinitions: false,
      format: true,
      strictIndexSignatures: false,
      declareExternallyReferenced: true,
      style: { singleQuote: true },
    });
    out.set(join(ROOT, 'src/plugins', plugin, 'section.gen.ts'), ts);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const stale = [];
  for (const [file, ts] of await generate()) {
    const now = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    if (now === ts) continue;
    if (check) stale.push(file.slice(ROOT.length + 1));
    else writeFileSync(file, ts);
  }
  if (stale.length) {
    console.error(`stale generated section types (run npm run gen:types): ${stale.join(', ')}`);
    process.exit(1);
  }
}
