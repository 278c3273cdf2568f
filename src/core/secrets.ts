/**
 * Fields marked `"x-opd-secret": true` in a plugin schema never reach logs, output or the
 * audit trail: a keyed hash (HMAC-SHA256) stands in their place.
 */
import type { Operation } from 'fast-json-patch';
import { hmac } from './canonical.js';

type Schema = Record<string, unknown>;

/**
 * Secret VALUES known to this process: secret parameters and `{ from_file }` texts of the
 * document being run (src/core/params.ts). Wherever such a value was substituted — a command's
 * argv, a file's content, a rule — it is masked like an x-opd-secret field: in every Redactor
 * walk, in plan and error text (scrub), in the audit trail. Values shorter than 4 characters
 * are not scrubbed (they would mask unrelated text); secrets are longer than that.
 */
const secretValues = new Set<string>();
export const MIN_SCRUB_LENGTH = 4;

export function registerSecretValues(values: Iterable<string>): void {
  for (const v of values) if (typeof v === 'string' && v.length >= MIN_SCRUB_LENGTH) secretValues.add(v);
}

/** For tests: forget the registered values. */
export function clearSecretValues(): void {
  secretValues.clear();
}

/** Replace every registered secret value inside `s` (`mask` gives the stand-in). */
export function scrub(s: string, mask: (v: string) => string = () => '<secret>'): string {
  if (!secretValues.size || typeof s !== 'string') return s;
  let out = s;
  // longest first, so that a secret containing another is masked whole
  for (const v of [...secretValues].sort((a, b) => b.length - a.length))
    if (out.includes(v)) out = out.split(v).join(mask(v));
  return out;
}

/** patternProperties patterns, compiled once (redacting 10,000 changes must not compile 10,000 times). */
const patterns = new Map<string, RegExp>();
function regex(p: string): RegExp {
  let r = patterns.get(p);
  if (!r) patterns.set(p, (r = new RegExp(p, 'u')));
  return r;
}

/**
 * Masks secrets in values, ops and texts. Built once per document from the validator's schemas
 * (`Prepared.redactor`, validate.ts `newRedactor`); `withKey` gives the audit trail's variant.
 */
export class Redactor {
  /**
   * `schemaFiles`: gives the validator's schema files by name (read once per process, on the
   * first value that needs them: a command that prints nothing secret never reads them).
   * Without a key, secrets show as `<secret>` (display); with one, as a keyed hash (audit).
   */
  constructor(
    private readonly schemaFiles: () => ReadonlyMap<string, object>,
    private readonly key?: Buffer | string,
    /** schema node → whether no x-opd-secret can be reached from it (shared with withKey's redactors) */
    private readonly secretFree = new WeakMap<object, boolean>(),
  ) {}

  /** The same schemas, masking with a keyed hash (audit trail, daemon records). */
  withKey(key: Buffer | string): Redactor {
    return new Redactor(this.schemaFiles, key, this.secretFree);
  }

  private get schemas(): ReadonlyMap<string, object> {
    return this.schemaFiles();
  }

  /** A text (a summary, an error) with every registered secret value masked. */
  text(s: string): string {
    return scrub(s, (v) => this.mask(v));
  }

  /**
   * Whether any x-opd-secret field can be reached from schema node `s` (its members at any
   * depth and every $ref they make, across files): an over-approximation of what walk() can
   * mask. Without one (and without secret values) a value under `s` is returned as it is.
   */
  private mayHoldSecret(s: Schema, file: string): boolean {
    let hit = this.secretFree.get(s);
    if (hit === undefined) {
      const seen = new Set<object>();
      const visit = (node: unknown, f: string): boolean => {
        if (node === null || typeof node !== 'object' || seen.has(node)) return false;
        seen.add(node);
        const o = node as Schema;
        if (o['x-opd-secret'] === true) return true;
        if (typeof o.$ref === 'string') {
          const [doc, frag] = o.$ref.split('#');
          const rf = doc || f;
          let base = this.schemas.get(rf) as Schema | undefined;
          if (frag) for (const seg of frag.split('/').filter(Boolean)) base = base?.[seg] as Schema | undefined;
          // a reference that does not resolve here: assume the worst
          if (base === undefined || visit(base, rf)) return true;
        }
        for (const v of Object.values(o)) if (visit(v, f)) return true;
        return false;
      };
      hit = !visit(s, file);
      this.secretFree.set(s, hit);
    }
    return !hit;
  }

  mask(value: unknown): string {
    if (this.key === undefined) return '<secret>';
    return `<secret hmac-sha256:${hmac(this.key, typeof value === 'string' ? value : JSON.stringify(value)).slice(0, 16)}>`;
  }

  private deref(s: Schema | undefined, file: string): [Schema | undefined, string] {
    let cur = s;
    let f = file;
    for (let i = 0; i < 8 && cur && typeof cur.$ref === 'string'; i++) {
      const ref = cur.$ref as string;
      const [doc, frag] = ref.split('#');
      if (doc) f = doc;
      let base = this.schemas.get(f) as Schema | undefined;
      if (frag) for (const seg of frag.split('/').filter(Boolean)) base = base?.[seg] as Schema | undefined;
      cur = base;
    }
    return [cur, f];
  }

  /** Child schema for one key/index, following properties, patternProperties, additionalProperties, items and *Of. */
  private child(s: Schema | undefined, file: string, key: string): [Schema | undefined, string] {
    const [d, f] = this.deref(s, file);
    if (!d) return [undefined, f];
    const props = d.properties as Record<string, Schema> | undefined;
    if (props && key in props) return this.deref(props[key], f);
    const pats = d.patternProperties as Record<string, Schema> | undefined;
    if (pats) for (const [p, ps] of Object.entries(pats)) if (regex(p).test(key)) return this.deref(ps, f);
    if (d.additionalProperties && typeof d.additionalProperties === 'object')
      return this.deref(d.additionalProperties as Schema, f);
    if (d.items && typeof d.items === 'object' && /^\d+$/.test(key)) return this.deref(d.items as Schema, f);
    for (const k of ['allOf', 'anyOf', 'oneOf'])
      for (const b of (d[k] as Schema[] | undefined) ?? []) {
        const r = this.child(b, f, key);
        if (r[0]) return r;
      }
    return [undefined, f];
  }

  private schemaAt(plugin: string, path: string[]): [Schema | undefined, string] {
    const file = `${plugin}.schema.json`;
    let cur: [Schema | undefined, string] = [this.schemas.get(file) as Schema | undefined, file];
    for (const seg of path) {
      cur = this.child(cur[0], cur[1], seg);
      if (!cur[0]) break;
    }
    return cur;
  }

  private walk(value: unknown, s: Schema | undefined, file: string): unknown {
    if (!secretValues.size && s && typeof s === 'object' && !this.mayHoldSecret(s, file)) return value; // a boolean schema (true) is no WeakMap key
    const [d, f] = this.deref(s, file);
    if (d?.['x-opd-secret'] === true) return value === undefined ? undefined : this.mask(value);
    if (typeof value === 'string') return scrub(value, (v) => this.mask(v));
    if (value === null || typeof value !== 'object' || (!d && !secretValues.size)) return value;
    if (Array.isArray(value))
      return value.map((v, i) => this.walk(v, this.child(d, f, String(i))[0], this.child(d, f, String(i))[1]));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const [cs, cf] = this.child(d, f, k);
      out[k] = this.walk(v, cs, cf);
    }
    return out;
  }

  /** Redact a whole plugin section. */
  section(plugin: string, value: unknown): unknown {
    return this.walk(value, this.schemas.get(`${plugin}.schema.json`) as Schema | undefined, `${plugin}.schema.json`);
  }

  /** Redact one resource value (`plugin/collection/name`). */
  resource(plugin: string, collection: string, value: unknown): unknown {
    const [s, f] = this.schemaAt(plugin, [collection, '_']);
    return this.walk(value, s, f);
  }

  /** Redact RFC 6902 operations relative to a resource. */
  ops(plugin: string, collection: string, ops: Operation[]): Operation[] {
    // the same operations are redacted for the plan hash and again for their change entry
    const hit = this.opsCache.get(ops);
    if (hit) return hit;
    const out = this.redactOps(plugin, collection, ops);
    this.opsCache.set(ops, out);
    return out;
  }

  private readonly opsCache = new WeakMap<Operation[], Operation[]>();

  private redactOps(plugin: string, collection: string, ops: Operation[]): Operation[] {
    return ops.map((op) => {
      if (!('value' in op)) return op;
      const path = op.path
        .split('/')
        .slice(1)
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
      const [s, f] = this.schemaAt(plugin, [collection, '_', ...path]);
      return { ...op, value: this.walk(op.value, s, f) } as Operation;
    });
  }
}
