/**
 * Validation of a state document against schema/state.schema.json (JSON Schema 2020-12,
 * ajv), reporting every problem at once with file:line:col, JSON pointer, expectation and fix.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { distance } from 'fastest-levenshtein';
import { invalidDocument, type Problem } from './errors.js';
import type { LoadedDocument } from './document.js';
import { locateProblems, pathToPointer, pointerToPath } from './document.js';
import { Redactor } from './secrets.js';

export const SCHEMA_DIR = fileURLToPath(new URL('../../schema/', import.meta.url));

/** The envelope validator (version, the plugins map) and one validator per plugin section. */
let envelopeValidator: ValidateFunction | undefined;
const sectionValidators = new Map<string, ValidateFunction>();
/** Whether dist/validators/ was built from the schema files as they are now (checked once). */
let precompiled: { plugins: Record<string, string> } | false | undefined;
/** The run-time fallback: every schema compiled with ajv (only when the precompiled ones are stale). */
let compiled: { envelope: ValidateFunction; sections: Map<string, ValidateFunction> } | undefined;

const VALIDATORS = fileURLToPath(new URL('../validators/', import.meta.url));
const req = createRequire(import.meta.url);

function schemaHash(): string {
  const h = createHash('sha256');
  for (const f of readdirSync(SCHEMA_DIR)
    .filter((x) => x.endsWith('.schema.json'))
    .sort())
    h.update(f + '\0' + readFileSync(SCHEMA_DIR + f, 'utf8') + '\0');
  return h.digest('hex');
}

let schemaFiles: ReadonlyMap<string, object> | undefined;

/** Every schema file, read once per process (the run-time compiler and the redactor share them). */
export function loadSchemas(): ReadonlyMap<string, object> {
  if (schemaFiles) return schemaFiles;
  const schemas = new Map<string, object>();
  for (const f of readdirSync(SCHEMA_DIR).sort()) {
    if (!f.endsWith('.schema.json')) continue;
    schemas.set(f, JSON.parse(readFileSync(SCHEMA_DIR + f, 'utf8')) as object);
  }
  schemaFiles = schemas;
  return schemas;
}

/**
 * A Redactor over the schemas this validator checks (their `x-opd-secret` fields): built once
 * per document by prepareLoaded (Prepared.redactor), once per command where there is none.
 */
export function newRedactor(): Redactor {
  return new Redactor(loadSchemas);
}

/**
 * Whether the validators `npm run build` precompiled (scripts/build-validator.mjs) match the
 * schema files: the same files with the same sizes and mtimes (no reading), or else the same
 * content hash.
 */
function precompiledFresh(): { plugins: Record<string, string> } | false {
  if (precompiled !== undefined) return precompiled;
  try {
    const m = JSON.parse(readFileSync(VALIDATORS + 'manifest.json', 'utf8')) as {
      hash: string;
      stats: Record<string, [number, number]>;
      plugins: Record<string, string>;
    };
    const files = readdirSync(SCHEMA_DIR)
      .filter((x) => x.endsWith('.schema.json'))
      .sort();
    const same =
      files.length === Object.keys(m.stats).length &&
      files.every((f) => {
        const st = statSync(SCHEMA_DIR + f);
        return m.stats[f] && m.stats[f][0] === st.size && m.stats[f][1] === st.mtimeMs;
      });
    precompiled = same || m.hash === schemaHash() ? m : false;
  } catch {
    precompiled = false; // not built: compile at run time
  }
  return precompiled;
}

/** Every schema compiled with ajv at run time (the precompiled validators are missing or stale). */
function compileAll(): NonNullable<typeof compiled> {
  if (compiled) return compiled;
  const { Ajv2020 } = req('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true });
  for (const k of ['x-opd-secret', 'x-opd-hint', 'x-opd-argv', 'x-opd-text']) ajv.addKeyword({ keyword: k });
  const schemas = loadSchemas();
  for (const [f, s] of schemas) if (f !== 'state.schema.json') ajv.addSchema(s);
  const state = structuredClone(schemas.get('state.schema.json')) as {
    properties: { plugins: { properties: Record<string, { $ref?: string } | boolean> } };
  };
  const sections = new Map<string, ValidateFunction>();
  for (const [name, ref] of Object.entries(state.properties.plugins.properties)) {
    const file = typeof ref === 'object' ? ref.$ref : undefined;
    if (typeof file !== 'string') continue; // an inline entry stays in the envelope
    sections.set(name, ajv.getSchema((schemas.get(file) as { $id: string }).$id)!);
    state.properties.plugins.properties[name] = true;
  }
  compiled = { envelope: ajv.compile(state), sections };
  return compiled;
}

function envelope(): ValidateFunction {
  if (envelopeValidator) return envelopeValidator;
  const pre = precompiledFresh();
  envelopeValidator = pre
    ? (req(VALIDATORS + 'state.cjs') as { default: ValidateFunction }).default
    : compileAll().envelope;
  return envelopeValidator;
}

/** The validator of one plugin's section, loaded on first use; undefined for an unknown plugin. */
function section(name: string): ValidateFunction | undefined {
  const hit = sectionValidators.get(name);
  if (hit) return hit;
  const pre = precompiledFresh();
  let v: ValidateFunction | undefined;
  if (pre)
    v = Object.hasOwn(pre.plugins, name)
      ? (req(VALIDATORS + name + '.cjs') as { default: ValidateFunction }).default
      : undefined;
  else v = compileAll().sections.get(name);
  if (v) sectionValidators.set(name, v);
  return v;
}

/**
 * Get validators ready ahead of time: the envelope and the given plugins' sections (all of
 * them without a list). Optional: validateDocument loads what a document needs on first use.
 */
export async function preloadValidator(plugins?: string[]): Promise<void> {
  envelope();
  const pre = precompiledFresh();
  const names = plugins ?? (pre ? Object.keys(pre.plugins) : [...compileAll().sections.keys()]);
  for (const n of names) section(n);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'number' && Number.isInteger(v) ? 'integer' : typeof v;
}

function show(v: unknown, max = 60): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return s.length > max ? s.slice(0, max) + '…' : s;
}

function valueAt(doc: unknown, pointer: string): unknown {
  let v = doc;
  for (const seg of pointerToPath(pointer)) {
    if (v && typeof v === 'object') v = (v as Record<string, unknown>)[seg];
    else return undefined;
  }
  return v;
}

function toProblem(e: ErrorObject, doc: unknown): Problem | undefined {
  const hint = (e.parentSchema as Record<string, unknown> | undefined)?.['x-opd-hint'] as string | undefined;
  const at = e.instancePath;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = e.params.additionalProperty as string;
      const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      const close = allowed.filter((a) => distance(a, key) <= 2);
      return {
        pointer: pathToPointer([...pointerToPath(at), key]),
        message: `unknown key ${show(key)}`,
        fix:
          key === 'comment' || key === 'description'
            ? `op-dbus ignores unknown keys; opd ignores only \`_\`-prefixed notes: rename it "_${key}"`
            : close.length
              ? `did you mean ${close.map((c) => `"${c}"`).join(' or ')}?`
              : allowed.length
                ? `allowed keys: ${allowed.join(', ')}`
                : 'remove it',
      };
    }
    case 'required':
      return {
        pointer: at,
        message: `missing required key "${e.params.missingProperty}"`,
        fix: hint ?? `add "${e.params.missingProperty}"`,
      };
    case 'propertyNames':
      return undefined; // the inner error (pattern/maxLength with propertyName) says it better
    case 'type':
      return {
        pointer: at,
        message: `expected ${e.params.type}, got ${typeOf(valueAt(doc, at))} ${show(valueAt(doc, at))}`,
        fix: hint,
      };
    case 'enum':
      return {
        pointer: at,
        message: `expected one of ${(e.params.allowedValues as unknown[]).map((v) => show(v)).join(', ')}, got ${show(valueAt(doc, at))}`,
        fix: hint,
      };
    case 'const':
      return {
        pointer: at,
        message: `expected ${show(e.params.allowedValue)}, got ${show(valueAt(doc, at))}`,
        fix: hint,
      };
    case 'pattern':
    case 'maxLength':
    case 'minLength':
    case 'format': {
      const name = ((e as { propertyName?: string }).propertyName ?? e.params.propertyName) as string | undefined;
      if (name !== undefined) {
        return {
          pointer: pathToPointer([...pointerToPath(at), name]),
          message: `invalid name ${show(name)}: ${e.keyword === 'pattern' ? `must match ${e.params.pattern}` : e.message}`,
          fix: hint ?? 'use letters, digits and - _ . only',
        };
      }
      // a secret's value is never echoed, not even its first characters
      const secret = (e.parentSchema as Record<string, unknown> | undefined)?.['x-opd-secret'] === true;
      const v = valueAt(doc, at);
      return {
        pointer: at,
        message: `invalid value ${secret ? '<secret>' : show(v)}: ${e.keyword === 'pattern' ? `must match ${e.params.pattern}` : e.message}`,
        fix: hint,
      };
    }
    case 'not': {
      // a key refused by name (op-dbus plugins and fields opd does not do): its schema says why
      const why = (e.parentSchema as Record<string, unknown> | undefined)?.description as string | undefined;
      return { pointer: at, message: why ? `not supported: ${why}` : 'not allowed here', fix: hint };
    }
    case 'if':
    case 'anyOf':
    case 'oneOf':
      return { pointer: at, message: e.message ?? e.keyword, fix: hint };
    default:
      return { pointer: at, message: `${e.message ?? e.keyword}`, fix: hint };
  }
}

/** Validate a whole (normalized) document; throws OpdError('invalid-document') with every problem. */
export function validateDocument(doc: unknown, loaded?: LoadedDocument): void {
  const refusals = loaded ? locateProblems(loaded, loaded.refusals) : [];
  const errors: ErrorObject[] = [];
  const env = envelope();
  if (!env(doc)) errors.push(...(env.errors ?? []));
  const sections = doc && typeof doc === 'object' && (doc as { plugins?: unknown }).plugins;
  if (sections && typeof sections === 'object' && !Array.isArray(sections))
    for (const [name, value] of Object.entries(sections)) {
      const v = section(name);
      if (!v || v(value)) continue;
      const at = pathToPointer(['plugins', name]);
      for (const e of v.errors ?? []) errors.push({ ...e, instancePath: at + e.instancePath });
    }
  if (!errors.length && !refusals.length) return;
  const seen = new Set<string>();
  const problems: Problem[] = [...refusals];
  // anyOf/oneOf explain themselves through their branches; keep them only when alone at a path
  const paths = new Set(errors.filter((e) => !['anyOf', 'oneOf', 'if'].includes(e.keyword)).map((e) => e.instancePath));
  // "one of these keys is required" (anyOf of required): one problem, not one per branch
  const anyOfRequired = new Map<string, { keys: string[]; hint?: string }>();
  for (const e of errors) {
    const m = e.keyword === 'required' ? /^(.*\/anyOf)\/\d+\/required$/.exec(e.schemaPath) : null;
    if (!m) continue;
    const k = e.instancePath + '\0' + m[1];
    const g = anyOfRequired.get(k) ?? { keys: [] };
    g.keys.push(String(e.params.missingProperty));
    const parent = errors.find(
      (x) => x.keyword === 'anyOf' && x.schemaPath === m[1] && x.instancePath === e.instancePath,
    );
    g.hint ??= (parent?.parentSchema as Record<string, unknown> | undefined)?.['x-opd-hint'] as string | undefined;
    anyOfRequired.set(k, g);
  }
  for (const e of errors) {
    if (
      ['anyOf', 'oneOf', 'if'].includes(e.keyword) &&
      (paths.has(e.instancePath) || [...paths].some((q) => q.startsWith(e.instancePath + '/')))
    )
      continue;
    const m = e.keyword === 'required' ? /^(.*\/anyOf)\/\d+\/required$/.exec(e.schemaPath) : null;
    const group = m ? anyOfRequired.get(e.instancePath + '\0' + m[1]) : undefined;
    if (group && group.keys.length > 1 && group.keys[0] !== e.params.missingProperty) continue;
    const p: Problem | undefined =
      group && group.keys.length > 1
        ? {
            pointer: e.instancePath,
            message: `missing one of ${group.keys.map((k) => `"${k}"`).join(', ')}`,
            fix: group.hint ?? 'add one of them',
          }
        : toProblem(e, doc);
    if (!p) continue;
    const key = p.pointer + '\0' + p.message;
    if (seen.has(key)) continue;
    seen.add(key);
    if (loaded) {
      const atKey = e.keyword === 'additionalProperties' || (e as { propertyName?: string }).propertyName !== undefined;
      const pos = loaded.locate(p.pointer, atKey);
      p.file = loaded.file;
      p.line = pos?.line;
      p.col = pos?.col;
    }
    problems.push(p);
  }
  throw invalidDocument(loaded?.file, problems);
}

/**
 * Names a JavaScript object cannot hold as an ordinary key: `__proto__` (assigning it sets the
 * prototype: the resource vanished, "0 resources"), `constructor` and `prototype` (every object
 * answers to them: a lookup finds what was never declared). opd refuses them as keys anywhere in
 * a document, with file:line, instead of dropping or misreading them.
 */
export const UNSAFE_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuse unsafe names (invalid-document, exit 65, every one at once). Run on the document as
 * parsed (its own keys hold `__proto__` safely) and again after normalization: an op-dbus list
 * of named objects becomes a map keyed by those names, and a name lost there leaves an object
 * whose prototype is not Object's.
 */
export function checkNames(value: unknown, loaded?: LoadedDocument): void {
  const problems: Problem[] = [];
  // paths are made only for a problem: each entry links to its parent (no path copied per node)
  interface At {
    parent: At | undefined;
    key: string;
  }
  const pathOf = (at: At | undefined, last?: string): string[] => {
    const path: string[] = last === undefined ? [] : [last];
    for (let a = at; a; a = a.parent) path.push(a.key);
    return path.reverse();
  };
  const nameValue = (at: At | undefined, key?: string) =>
    problems.push({
      pointer: pathToPointer(pathOf(at, key)),
      message: '"__proto__" cannot be a name: as a key it would replace the prototype of the map holding it',
      fix: 'rename it (opd refuses __proto__, constructor and prototype as names and keys)',
    });
  // a value that becomes a name (an op-dbus list's `name`, a parent bridge): `__proto__` is never anything else
  if (value === '__proto__') nameValue(undefined);
  const stack: [object, At | undefined][] = value !== null && typeof value === 'object' ? [[value, undefined]] : [];
  while (stack.length) {
    const [v, at] = stack.pop()!;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (x === '__proto__') nameValue(at, String(i));
        else if (x !== null && typeof x === 'object') stack.push([x, { parent: at, key: String(i) }]);
      }
      continue;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null)
      problems.push({
        pointer: pathToPointer(pathOf(at)),
        message: 'a name was lost here: an entry named "__proto__" (in a list of named objects?) cannot be a key',
        fix: 'rename it: opd refuses __proto__, constructor and prototype as names',
      });
    for (const k of Object.keys(v)) {
      if (UNSAFE_NAMES.has(k)) {
        problems.push({
          pointer: pathToPointer(pathOf(at, k)),
          message: `${JSON.stringify(k)} cannot be a name: JavaScript objects reserve it, so opd would drop or misread it`,
          fix: `rename it (opd refuses __proto__, constructor and prototype as names and keys)`,
        });
        continue;
      }
      const x = (v as Record<string, unknown>)[k];
      if (x === '__proto__') nameValue(at, k);
      else if (x !== null && typeof x === 'object') stack.push([x, { parent: at, key: k }]);
    }
  }
  if (!problems.length) return;
  problems.sort((a, b) => (a.pointer < b.pointer ? -1 : 1));
  throw invalidDocument(
    loaded?.file,
    loaded
      ? problems.map((p) => {
          const pos = loaded.locate(p.pointer, true);
          return { ...p, file: loaded.file, line: pos?.line, col: pos?.col };
        })
      : problems,
  );
}
