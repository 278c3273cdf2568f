#!/usr/bin/env node
// Precompile the state-document validator with ajv's standalone code generation, so a CLI run
// does not compile every plugin schema at start-up. dist/core/state-validator.cjs carries the
// hash of the schema files it was made from; validate.ts falls back to compiling at run time
// when the hash does not match.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import standaloneCode from 'ajv/dist/standalone/index.js';

const dir = new URL('../schema/', import.meta.url).pathname;
const files = readdirSync(dir).filter((f) => f.endsWith('.schema.json')).sort();
const hash = createHash('sha256');
const schemas = new Map();
for (const f of files) {
  const text = readFileSync(dir + f, 'utf8');
  hash.update(f + '\0' + text + '\0');
  schemas.set(f, JSON.parse(text));
}
const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true, code: { source: true } });
for (const k of ['x-opd-secret', 'x-opd-hint', 'x-opd-destructive']) ajv.addKeyword({ keyword: k });
for (const [f, s] of schemas) if (f !== 'state.schema.json') ajv.addSchema(s);
const validate = ajv.compile(schemas.get('state.schema.json'));
const code = standaloneCode(ajv, validate);
// CommonJS: ajv's standalone code requires its runtime helpers
writeFileSync(new URL('../dist/core/state-validator.cjs', import.meta.url), `${code}\nmodule.exports.schemaHash = ${JSON.stringify(hash.digest('hex'))};\n`);
console.error(`precompiled validator for ${files.length} schemas`);
