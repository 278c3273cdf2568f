#!/usr/bin/env node
// `npm run new-plugin NAME`: scaffold a plugin (CONTRIBUTING.md, "Adding a plugin"; docs/design.md).
// It writes
//   src/plugins/NAME/manifest.ts   what opd knows of the plugin without loading it
//   src/plugins/NAME/index.ts      the plugin: read, plan, apply through the host doors
//   schema/NAME.schema.json        its section's schema (and its row in schema/state.schema.json)
//   test/unit/plugins/NAME/NAME.test.ts  its planner, and apply / apply again / remove under a temp root
// and adds one line to the registry (src/plugins/manifests.ts). Nothing else changes. The example
// resource it manages (a text file /etc/opd-NAME/<entry> per entry, under --root) works end to end:
// replace it with what the plugin really manages. test/unit/scaffold.test.ts runs this in a copy
// of the repository and checks that the result builds, lints and passes its tests.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const EX_USAGE = 64;

function fail(message, fix) {
  process.stderr.write(`opd new-plugin: ${message}\n  fix: ${fix}\n`);
  process.exit(EX_USAGE);
}

const name = process.argv[2];
if (!name || process.argv.length > 3)
  fail('give exactly one plugin name', 'npm run new-plugin NAME (lower-case letters and digits: mydevice)');
if (!/^[a-z][a-z0-9]{1,30}$/.test(name))
  fail(
    `${JSON.stringify(name)} is not a plugin name`,
    'use 2 to 31 lower-case letters and digits, starting with a letter (it is a folder, a section key and an identifier)',
  );
const folder = join(ROOT, 'src/plugins', name);
const schemaFile = join(ROOT, 'schema', `${name}.schema.json`);
const testDir = join(ROOT, 'test/unit/plugins', name);
const registryFile = join(ROOT, 'src/plugins/manifests.ts');
const stateFile = join(ROOT, 'schema/state.schema.json');
for (const [p, what] of [
  [folder, 'its folder'],
  [schemaFile, 'its schema'],
  [testDir, 'its test folder'],
])
  if (existsSync(p)) fail(`plugin ${name} exists already (${what}: ${p})`, 'choose another name');
const state = readFileSync(stateFile, 'utf8');
if (new RegExp(`^\\s*"${name}":`, 'm').test(state))
  fail(
    `schema/state.schema.json has a row ${JSON.stringify(name)} already (an op-dbus section opd refuses by name)`,
    'choose another name',
  );

const Name = name[0].toUpperCase() + name.slice(1);

const manifest = `/** ${name} as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';

const manifest: PluginManifest = {
  name: '${name}',
  collections: ['entries'],
  // settings: [{ key, flag, env, type, default, help }], tunables: { ${name}CallMs: 30_000 },
  // adoptsFrom, rules, opdbus: see src/core/manifest.ts and the other plugins' manifests
  load: () => import('./index.js'),
};
export default manifest;
`;

const index = `/**
 * ${name}: one text file /etc/opd-${name}/<entry> per entry (under --root). Scaffolded by
 * \`npm run new-plugin ${name}\`: replace the example resource with what the plugin manages, and
 * keep the shape — read looks and never writes, plan is pure, apply changes the host only through
 * the doors (src/core/hostfs.ts, src/exec.ts, src/dbus.ts), which need the ApplyContext.
 */
import { applyEach, resourceChange } from '../../core/plugin.js';
import type { ApplyContext, Change, Obj, Plugin, ResourceDiff } from '../../core/plugin.js';
import { putFile, readText, removePath, rootOf } from '../../core/hostfs.js';
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import type { ${Name}Doc, Entry } from './section.gen.js';

/** The section's type, generated from schema/${name}.schema.json (npm run gen:types). */
export type ${Name}Section = ${Name}Doc & Obj;

/** Where an entry lives, as the document's host names it (the doors put it under --root). */
export const entryPath = (entry: string) => \`/etc/opd-${name}/\${entry}\`;

/** A change's payload: what apply needs, typed. */
export interface ${Name}Data {
  entry: string;
  /** the content to write; absent: remove the file */
  content?: string;
}

/** The plan of one entry's diff: at most one change, with a summary for people and its payload. */
export function plan${Name}(d: ResourceDiff): Change<${Name}Data>[] {
  if (d.action === 'delete')
    return [resourceChange<${Name}Data>(d, 'delete', \`remove \${entryPath(d.name)}\`, { entry: d.name })];
  const want = d.desired as Entry;
  const summary = d.action === 'create' ? \`write \${entryPath(d.name)}\` : \`rewrite \${entryPath(d.name)}\`;
  return [resourceChange<${Name}Data>(d, d.action, summary, { entry: d.name, content: want.content ?? '' })];
}

async function applyOne(ctx: ApplyContext, c: Change<${Name}Data>): Promise<void> {
  const d = c.data!;
  if (d.content === undefined) removePath(ctx, entryPath(d.entry));
  else await putFile(ctx, entryPath(d.entry), d.content, { mode: 0o644 });
}

const plugin: Plugin<${Name}Section, ${Name}Data> = {
  ...sectionSpec(manifest),
  async read(ctx, desired) {
    const root = rootOf(ctx.settings);
    const entries: Record<string, Entry> = {};
    for (const entry of Object.keys(desired.entries ?? {})) {
      const content = readText(root + entryPath(entry));
      if (content !== undefined) entries[entry] = { content };
    }
    return { entries };
  },
  plan: plan${Name},
  apply: applyEach(applyOne),
};

export default plugin;
`;

const schema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: `https://opd.dev/schema/${name}.schema.json`,
  title: `${name} plugin: one text file /etc/opd-${name}/<entry> per entry`,
  description: `With --root DIR (OPD_ROOT) the files are written under DIR.`,
  type: 'object',
  additionalProperties: false,
  properties: {
    entries: {
      type: 'object',
      propertyNames: { $ref: '#/$defs/name' },
      additionalProperties: { $ref: '#/$defs/entry' },
      description: `Entries by name: each is the file /etc/opd-${name}/<name>.`,
    },
  },
  $defs: {
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
      'x-opd-hint': 'an entry name: letters, digits, _ . and -, at most 64 characters, not starting with . or -',
    },
    entry: {
      type: 'object',
      additionalProperties: false,
      properties: {
        state: {
          $ref: 'common.schema.json#/$defs/state',
          description: `absent removes the file /etc/opd-${name}/<name>.`,
        },
        depends_on: { $ref: 'common.schema.json#/$defs/depends_on' },
        when: { $ref: 'common.schema.json#/$defs/when' },
        allow_destroy: { $ref: 'common.schema.json#/$defs/allow_destroy' },
        content: {
          type: 'string',
          maxLength: 65536,
          description: `The file's whole content.`,
          examples: ['hello\n'],
        },
      },
    },
  },
  examples: [{ entries: { greeting: { content: 'hello\n' } } }],
};

const test = `/** The ${name} plugin: its planner, and apply / apply again / remove under a temporary --root. */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { applyPlan } from '../../../../src/core/apply.js';
import { parseText } from '../../../../src/core/document.js';
import { computePlan, prepareLoaded } from '../../../../src/core/engine.js';
import type { ResourceDiff } from '../../../../src/core/plugin.js';
import { registry } from '../../../../src/plugins/index.js';
import { entryPath, plan${Name} } from '../../../../src/plugins/${name}/index.js';

const log = pino({ level: 'silent' });

const diff = (action: ResourceDiff['action'], desired?: object): ResourceDiff => ({
  plugin: '${name}',
  collection: 'entries',
  name: 'greeting',
  address: '${name}/entries/greeting',
  action,
  current: undefined,
  desired: desired as ResourceDiff['desired'],
  ops: [],
  allowDestroy: false,
});

/** Plan the document under the root, apply the plan, and plan again: the changes of both plans. */
async function converge(root: string, yaml: string): Promise<{ applied: string[]; after: string[] }> {
  const settings = { root };
  const prep = await prepareLoaded(registry, parseText(yaml, 'state.yaml'), settings);
  const first = await computePlan(prep, { settings, log });
  const outcomes = await applyPlan(first.plan, prep.plugins, { settings, log, allowDestroy: false });
  expect(outcomes.filter((o) => o.status !== 'ok')).toEqual([]);
  const again = await computePlan(prep, { settings, log });
  return { applied: first.plan.changes.map((c) => c.summary), after: again.plan.changes.map((c) => c.summary) };
}

describe('the ${name} plugin', () => {
  it('plans a write for a new entry, a rewrite for a changed one and a removal for an absent one', () => {
    expect(plan${Name}(diff('create', { content: 'hi' })).map((c) => [c.action, c.summary, c.data])).toEqual([
      ['create', \`write \${entryPath('greeting')}\`, { entry: 'greeting', content: 'hi' }],
    ]);
    expect(plan${Name}(diff('update', { content: 'ho' })).map((c) => c.summary)).toEqual([
      \`rewrite \${entryPath('greeting')}\`,
    ]);
    expect(plan${Name}(diff('delete')).map((c) => [c.action, c.data])).toEqual([['delete', { entry: 'greeting' }]]);
  });

  it('writes an entry under --root, finds nothing to do the second time, and removes it when absent', async () => {
    const root = mkdtempSync(join(tmpdir(), 'opd-${name}-'));
    const file = join(root, entryPath('greeting'));
    const doc = (spec: string) => \`version: 1\\nplugins:\\n  ${name}:\\n    entries:\\n      greeting: \${spec}\\n\`;
    expect(await converge(root, doc('{ content: "hello" }'))).toEqual({
      applied: [\`write \${entryPath('greeting')}\`],
      after: [],
    });
    expect(readFileSync(file, 'utf8')).toBe('hello');
    expect(await converge(root, doc('{ content: "hello" }'))).toEqual({ applied: [], after: [] });
    expect(await converge(root, doc('{ state: absent }'))).toEqual({
      applied: [\`remove \${entryPath('greeting')}\`],
      after: [],
    });
    expect(existsSync(file)).toBe(false);
  });
});
`;

// the registry line, in order
const registry = readFileSync(registryFile, 'utf8').split('\n');
const line = `export { default as ${name} } from './${name}/manifest.js';`;
const rows = registry.map((l, i) => [l, i]).filter(([l]) => l.startsWith('export { default as '));
const before = rows.find(([l]) => l > line);
const at = before ? before[1] : rows.length ? rows[rows.length - 1][1] + 1 : registry.length - 1;
registry.splice(at, 0, line);

// the envelope's row referring to the schema, in order among the plugin rows
const stateLines = state.split('\n');
const refRow = /^(\s*)"([a-z0-9_]+)": \{ "\$ref": "\2\.schema\.json" \},$/;
const refs = stateLines.map((l, i) => [refRow.exec(l), i]).filter(([m]) => m);
if (!refs.length) fail('schema/state.schema.json has no plugin rows to add to', 'restore it from git');
const next = refs.find(([m]) => m[2] > name);
const indent = refs[0][0][1];
const stateAt = next ? next[1] : refs[refs.length - 1][1] + 1;
stateLines.splice(stateAt, 0, `${indent}"${name}": { "$ref": "${name}.schema.json" },`);

mkdirSync(folder, { recursive: true });
mkdirSync(testDir, { recursive: true });
writeFileSync(join(folder, 'manifest.ts'), manifest);
writeFileSync(join(folder, 'index.ts'), index);
writeFileSync(schemaFile, JSON.stringify(schema, null, 2) + '\n');
writeFileSync(join(testDir, `${name}.test.ts`), test);
writeFileSync(registryFile, registry.join('\n'));
writeFileSync(stateFile, stateLines.join('\n'));

// the code as prettier writes it (npm run lint checks it)
const prettier = join(ROOT, 'node_modules/.bin/prettier');
if (existsSync(prettier)) {
  const r = spawnSync(prettier, ['--write', folder, testDir], { cwd: ROOT, stdio: 'ignore' });
  if (r.status !== 0) process.stderr.write('opd new-plugin: prettier could not format the new files\n');
}

process.stdout.write(
  [
    `created plugin ${name}:`,
    `  src/plugins/${name}/manifest.ts, src/plugins/${name}/index.ts`,
    `  schema/${name}.schema.json (and its row in schema/state.schema.json)`,
    `  test/unit/plugins/${name}/${name}.test.ts`,
    `  one line in src/plugins/manifests.ts`,
    'next: npm run gen:types && npx vitest run test/unit/plugins/' + name,
    `then: replace the example resource, write test/integration/${name}.test.ts against the real backend,`,
    `      and npm run docs (docs/plugins/${name}.md: write its prose above the generated region)`,
    '',
  ].join('\n'),
);
