/**
 * The fields of the state document, read from schema/: one row per field of every plugin section
 * (and of the document's envelope), with its type, default, whether it is required, its
 * description and an example. The plugin reference pages (docs/plugins/*.md), opd-state(5) and the
 * completeness tests are all made from these rows, so they cannot drift from the schemas.
 */
import { loadSchemas } from '../../core/validate.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: Json };

export interface FieldDoc {
  /** Where the field sits in its section: `bridges.<name>.ports.<name>.tag` (`[]` marks a list item). */
  path: string;
  /** Its last key: `tag`. */
  name: string;
  /** Type as people read it: `integer (0–4095)`, `map of <name> → object`, `list of string`, `"a" | "b"`. */
  type: string;
  required: boolean;
  /** The schema's `default`, when it has one. */
  default?: Json;
  description?: string;
  /** The schema's first `examples` entry, or one derived from an enum, a const or a boolean. */
  example?: Json;
  /** Whether the example was written in the schema (`examples`) rather than derived. */
  exampleGiven: boolean;
  /** The fix opd prints for a bad value (`x-opd-hint`). */
  hint?: string;
  secret: boolean;
  /** A field holding other fields (an object, a map of objects, a list of objects). */
  container: boolean;
  /** A form opd refuses by name (op-dbus fields with no opd equivalent: `not: {}`), with its hint. */
  refused: boolean;
  /** The field's schema, with its `$ref`s resolved at the top (for validating the example). */
  schema: Schema;
  /** Where the field is declared: the schema file and the JSON pointer of its property. */
  source: { file: string; pointer: string };
}

interface Holder {
  schema: Schema;
  file: string;
  pointer: string;
  suffix: string;
}

const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

export interface SectionDoc {
  /** The plugin (the section's key under `plugins:`), or `(document)` for the envelope. */
  name: string;
  file: string;
  title: string;
  description?: string;
  /** A whole section as written in a document: the schema's root `examples`. */
  examples: Json[];
  fields: FieldDoc[];
}

const isObj = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `not: {}`: no value is valid (a form opd refuses by name, with a hint). */
const refusedSchema = (s: Schema) => isObj(s.not) && Object.keys(s.not).length === 0;

/** Resolves `$ref`s between the schema files (`file.schema.json#/$defs/x`, `#/$defs/x`). */
class Resolver {
  constructor(private readonly files: ReadonlyMap<string, object>) {}

  /** The schema a `$ref` names, and the file it lives in. */
  target(ref: string, base: string): { schema: Schema; file: string; pointer: string } {
    const [file, pointer = ''] = ref.split('#');
    const f = file || base;
    let s: Json = this.files.get(f) as Json;
    if (s === undefined) throw new Error(`${base}: $ref to an unknown schema file ${f}`);
    for (const part of pointer.split('/').filter(Boolean))
      s = isObj(s) ? (s[decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')] as Json) : undefined!;
    if (!isObj(s)) throw new Error(`${base}: $ref ${ref} names nothing`);
    return { schema: s, file: f, pointer };
  }

  /**
   * A schema with its `$ref` chain merged in: the referring schema's own keywords (a description,
   * a default) win over the target's. Returns the file the innermost target lives in.
   */
  resolve(
    s: Schema,
    file: string,
    pointer = '',
    seen: string[] = [],
  ): { schema: Schema; file: string; pointer: string; refs: string[] } {
    if (typeof s.$ref !== 'string') return { schema: s, file, pointer, refs: seen };
    const key = `${s.$ref.startsWith('#') ? file : ''}${s.$ref}`;
    if (seen.includes(key)) return { schema: s, file, pointer, refs: seen };
    const t = this.target(s.$ref, file);
    const inner = this.resolve(t.schema, t.file, t.pointer, [...seen, key]);
    const own = { ...s };
    delete own.$ref;
    return { schema: { ...inner.schema, ...own }, file: inner.file, pointer: inner.pointer, refs: inner.refs };
  }
}

/** The branches of a union (anyOf/oneOf) that are schemas (not the `true` of a constraint). */
function branches(s: Schema): Schema[] {
  return [...((s.anyOf as Json[]) ?? []), ...((s.oneOf as Json[]) ?? [])].filter(isObj);
}

function types(s: Schema): string[] {
  if (Array.isArray(s.type)) return s.type as string[];
  return typeof s.type === 'string' ? [s.type] : [];
}

function range(s: Schema): string {
  const lo = s.minimum ?? s.exclusiveMinimum;
  const hi = s.maximum ?? s.exclusiveMaximum;
  if (lo !== undefined && hi !== undefined) return ` (${String(lo)}–${String(hi)})`;
  if (lo !== undefined) return ` (≥ ${String(lo)})`;
  if (hi !== undefined) return ` (≤ ${String(hi)})`;
  return '';
}

/** The label of a map's keys: from its propertyNames' `$ref` name (`#/$defs/name` → `<name>`), else `<key>`. */
function keyLabel(s: Schema): string {
  const pn = s.propertyNames;
  if (isObj(pn) && typeof pn.$ref === 'string') {
    const last = pn.$ref.split('/').pop()!;
    return `<${last.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()}>`;
  }
  return '<key>';
}

export class SchemaWalker {
  private readonly r: Resolver;

  constructor(private readonly files: ReadonlyMap<string, object> = loadSchemas()) {
    this.r = new Resolver(files);
  }

  /** How people read a schema's type. */
  typeOf(raw: Schema, file: string, depth = 0): string {
    const { schema: s, file: f } = this.r.resolve(raw, file);
    if (depth > 4) return 'object';
    if (refusedSchema(s)) return 'refused';
    if ('const' in s) return JSON.stringify(s.const);
    if (Array.isArray(s.enum)) return (s.enum as Json[]).map((v) => JSON.stringify(v)).join(' | ');
    const bs = branches(s);
    if (bs.length) {
      return [...new Set(bs.map((b) => this.typeOf(b, f, depth + 1)))].join(' | ');
    }
    const ts = types(s);
    if (ts.length > 1) return ts.join(' | ');
    const t = ts[0] ?? (isObj(s.properties) || isObj(s.additionalProperties) ? 'object' : 'any');
    if (t === 'array') {
      const items = isObj(s.items) ? this.typeOf(s.items, f, depth + 1) : 'any';
      return `list of ${items.includes(' | ') ? `(${items})` : items}`;
    }
    if (t === 'object') {
      if (isObj(s.additionalProperties) && !isObj(s.properties))
        return `map of ${keyLabel(s)} → ${this.typeOf(s.additionalProperties, f, depth + 1)}`;
      return 'object';
    }
    if (t === 'integer' || t === 'number') return t + range(s);
    return t;
  }

  /** The object schemas whose properties a field's value holds: itself, a map's values, a list's items, union branches. */
  private holders(raw: Schema, file: string, pointer: string, depth = 0): Holder[] {
    if (depth > 6) return [];
    const { schema: s, file: f, pointer: p } = this.r.resolve(raw, file, pointer);
    const out: Holder[] = [];
    const under = (v: Json, at: string, suffix: string) => {
      if (isObj(v)) for (const h of this.holders(v, f, at, depth + 1)) out.push({ ...h, suffix: suffix + h.suffix });
    };
    if (isObj(s.properties)) out.push({ schema: s, file: f, pointer: p, suffix: '' });
    under(s.additionalProperties, `${p}/additionalProperties`, `.${keyLabel(s)}`);
    // map entries whose keys match a pattern (systemd templates): the same key label
    if (isObj(s.patternProperties))
      for (const [k, v] of Object.entries(s.patternProperties))
        under(v, `${p}/patternProperties/${esc(k)}`, `.${keyLabel(s)}`);
    under(s.items, `${p}/items`, '[]');
    for (const kw of ['anyOf', 'oneOf', 'allOf'] as const)
      if (Array.isArray(s[kw])) (s[kw] as Json[]).forEach((b, i) => under(b, `${p}/${kw}/${i}`, ''));
    return out;
  }

  private exampleOf(s: Schema): { example?: Json; given: boolean } {
    if (Array.isArray(s.examples) && s.examples.length) return { example: s.examples[0], given: true };
    if ('const' in s) return { example: s.const, given: false };
    if (Array.isArray(s.enum) && s.enum.length) return { example: s.enum[0], given: false };
    if (types(s).length === 1 && types(s)[0] === 'boolean') return { example: true, given: false };
    for (const b of branches(s)) {
      const r = this.resolveOnly(b);
      const e = this.exampleOf(r);
      if (e.example !== undefined) return { example: e.example, given: false };
    }
    return { given: false };
  }

  private resolveOnly(s: Schema): Schema {
    try {
      return this.r.resolve(s, 'state.schema.json').schema;
    } catch {
      return s;
    }
  }

  /** Every field under an object schema, depth first, in the schema's order. */
  fields(root: Schema, file: string, pointer = '', prefix = '', stack: string[] = []): FieldDoc[] {
    const out: FieldDoc[] = [];
    const seen = new Set<string>();
    for (const h of this.holders(root, file, pointer)) {
      const props = h.schema.properties as Record<string, Json>;
      const required = new Set(Array.isArray(h.schema.required) ? (h.schema.required as string[]) : []);
      for (const [name, raw] of Object.entries(props)) {
        if (!isObj(raw)) continue; // `true`: a constraint's placeholder, not a field
        const path = `${prefix}${h.suffix}${prefix || h.suffix ? '.' : ''}${name}`.replace(/^\./, '');
        if (seen.has(path)) continue;
        seen.add(path);
        const at = `${h.pointer}/properties/${esc(name)}`;
        const { schema: s, refs } = this.r.resolve(raw, h.file, at);
        const inner = this.holders(raw, h.file, at);
        const ex = this.exampleOf(s);
        const field: FieldDoc = {
          path,
          name,
          type: this.typeOf(raw, h.file),
          required: required.has(name),
          ...(s.default !== undefined ? { default: s.default } : {}),
          ...(typeof s.description === 'string' ? { description: s.description } : {}),
          ...(ex.example !== undefined ? { example: ex.example } : {}),
          exampleGiven: ex.given,
          ...(typeof s['x-opd-hint'] === 'string' ? { hint: s['x-opd-hint'] } : {}),
          secret: s['x-opd-secret'] === true,
          container: inner.length > 0,
          refused: refusedSchema(s),
          schema: s,
          source: { file: h.file, pointer: at },
        };
        out.push(field);
        const key = refs.join('>');
        // a schema that contains itself (a recursive definition) is listed once
        if (inner.length && !(refs.length && stack.includes(key)))
          out.push(...this.fields(raw, h.file, at, path, refs.length ? [...stack, key] : stack));
      }
    }
    return out;
  }

  /** One section: a plugin (`ovs`) or the document's envelope (`(document)`). */
  section(name: string): SectionDoc {
    const state = this.files.get('state.schema.json') as Schema;
    if (name === '(document)') {
      const envelope = structuredClone(state);
      const plugins = (envelope.properties as Schema).plugins as Schema;
      // the plugin sections have pages of their own: here they are one row each
      plugins.properties = {};
      return {
        name,
        file: 'state.schema.json',
        title: String(state.title ?? 'opd state document'),
        ...(typeof state.description === 'string' ? { description: state.description } : {}),
        examples: (state.examples as Json[]) ?? [],
        fields: this.fields(envelope, 'state.schema.json'),
      };
    }
    const ref = ((state.properties as Schema).plugins as Schema).properties as Schema;
    const entry = ref[name];
    if (!isObj(entry) || typeof entry.$ref !== 'string') throw new Error(`no plugin section ${name} in the schema`);
    const file = entry.$ref;
    const s = this.files.get(file) as Schema;
    return {
      name,
      file,
      title: String(s.title ?? name),
      ...(typeof s.description === 'string' ? { description: s.description } : {}),
      examples: (s.examples as Json[]) ?? [],
      fields: this.fields(s, file),
    };
  }

  /** The plugin sections the schema has (those with a schema file of their own), sorted. */
  plugins(): string[] {
    const state = this.files.get('state.schema.json') as Schema;
    const props = ((state.properties as Schema).plugins as Schema).properties as Schema;
    return Object.entries(props)
      .filter(([, v]) => isObj(v) && typeof v.$ref === 'string')
      .map(([k]) => k)
      .sort();
  }

  /** op-dbus plugin names the schema refuses, with why (`not: {}` entries under plugins). */
  refused(): { name: string; description: string; hint: string }[] {
    const state = this.files.get('state.schema.json') as Schema;
    const props = ((state.properties as Schema).plugins as Schema).properties as Schema;
    return Object.entries(props)
      .filter(([, v]) => isObj(v) && isObj(v.not))
      .map(([k, v]) => ({
        name: k,
        description: String((v as Schema).description ?? ''),
        hint: String((v as Schema)['x-opd-hint'] ?? ''),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
