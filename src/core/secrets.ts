/**
 * Fields marked `"x-opd-secret": true` in a plugin schema never reach logs, output or the
 * audit trail: a keyed hash (HMAC-SHA256) stands in their place.
 */
import type { Operation } from 'fast-json-patch';
import { createHash } from 'node:crypto';
import { hmac } from './canonical.js';
import { invalidDocument, type Problem } from './errors.js';
import { pathToPointer } from './document.js';

type Schema = Record<string, unknown>;

/**
 * Secret VALUES known to this process: secret parameters and `{ from_file }` texts of the
 * document being run (src/core/params.ts). Wherever such a value was substituted — a command's
 * argv, a file's content, a rule — it is masked like an x-opd-secret field: in every Redactor
 * walk, in plan and error text (scrub), in the audit trail.
 *
 * What is masked, so that a part of a secret is as hidden as the whole (a validator that echoes
 * line 2 of a multi-line secret file, a message that cuts a value after 60 characters):
 * - the whole value, and every line of it (also trimmed) of at least 4 characters;
 * - every substring of 8 or more characters of a line: any 8 characters in a row of a line mark
 *   a masked region, and regions that touch are masked as one. An 8-character window that holds
 *   a quote, a backslash or a control character, or no letter or digit at all, does not count
 *   (it would cut JSON syntax or indentation apart); the line-level match still covers those.
 * Shorter values and lines are not scrubbed (they would mask unrelated text).
 */
const secretValues = new Set<string>();
export const MIN_SCRUB_LENGTH = 4;
/** The length of the windows of a secret's lines that are masked wherever they appear. */
export const SCRUB_WINDOW = 8;

/** Whole values and lines found by indexOf, longest first; windows of lines by lookup. */
interface Matcher {
  whole: string[];
  windows: Set<string>;
  /** first two UTF-16 units of every window, as one number: a cheap filter before slicing */
  heads: Set<number>;
}
let matcher: Matcher | undefined;

/** A window counts when it holds no quote, backslash or control character (charCode < 32 or 127). */
function windowOk(w: string): boolean {
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i);
    if (c < 32 || c === 127 || c === 34 || c === 92) return false;
  }
  return true;
}
const WINDOW_WORD = /[\p{L}\p{N}]/u;

function buildMatcher(): Matcher {
  const whole = new Set<string>();
  const windows = new Set<string>();
  const heads = new Set<number>();
  for (const v of secretValues) {
    whole.add(v);
    for (const raw of v.split(/\r?\n/))
      for (const line of new Set([raw, raw.trim()])) {
        if (line.length < MIN_SCRUB_LENGTH) continue;
        let gaps = line.length < SCRUB_WINDOW;
        for (let i = 0; i + SCRUB_WINDOW <= line.length; i++) {
          const w = line.slice(i, i + SCRUB_WINDOW);
          if (!windowOk(w) || !WINDOW_WORD.test(w)) {
            gaps = true;
            continue;
          }
          windows.add(w);
          heads.add(w.charCodeAt(0) * 65536 + w.charCodeAt(1));
        }
        // a line that windows do not cover whole is also found as a whole
        if (gaps) whole.add(line);
      }
  }
  return { whole: [...whole].sort((a, b) => b.length - a.length), windows, heads };
}

function currentMatcher(): Matcher {
  return (matcher ??= buildMatcher());
}

export function registerSecretValues(values: Iterable<string>): void {
  for (const v of values)
    if (typeof v === 'string' && v.length >= MIN_SCRUB_LENGTH && !secretValues.has(v)) {
      secretValues.add(v);
      matcher = undefined;
    }
}

/** For tests: forget the registered values (and the fingerprint stand-ins). */
export function clearSecretValues(): void {
  secretValues.clear();
  matcher = undefined;
  stand.clear();
  standById.length = 0;
}

/** The regions of `s` ([start, end) pairs, sorted, merged) that hold secret text. */
function secretRegions(s: string, m: Matcher): [number, number][] {
  const found: [number, number][] = [];
  for (const v of m.whole) {
    if (v.length > s.length) continue;
    for (let i = s.indexOf(v); i >= 0; i = s.indexOf(v, i + 1)) found.push([i, i + v.length]);
  }
  if (m.windows.size)
    for (let i = 0; i + SCRUB_WINDOW <= s.length; i++) {
      if (!m.heads.has(s.charCodeAt(i) * 65536 + s.charCodeAt(i + 1))) continue;
      if (m.windows.has(s.slice(i, i + SCRUB_WINDOW))) found.push([i, i + SCRUB_WINDOW]);
    }
  if (found.length < 2) return found;
  found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const out: [number, number][] = [found[0]];
  for (const r of found.slice(1)) {
    const last = out[out.length - 1];
    if (r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push(r);
  }
  return out;
}

/** Whether `s` holds a registered secret value, a line of one, or 8 characters in a row of such a line. */
export function holdsSecret(s: string): boolean {
  if (!secretValues.size || typeof s !== 'string' || s.length < MIN_SCRUB_LENGTH) return false;
  return secretRegions(s, currentMatcher()).length > 0;
}

/**
 * The door to processes (src/exec.ts) asks this before it starts one: the index of the first
 * argument that holds a whole registered secret value of at least 8 characters, or -1. (The
 * document's own argv fields are refused at validate, with their line: checkSecretArgv.)
 */
export function secretArgIndex(args: readonly string[]): number {
  if (!secretValues.size) return -1;
  for (const v of secretValues) {
    if (v.length < SCRUB_WINDOW) continue;
    const i = args.findIndex((a) => typeof a === 'string' && a.includes(v));
    if (i >= 0) return i;
  }
  return -1;
}

/**
 * Fingerprints of secret content (a file's content that holds a secret, the hash of a secret
 * file as read) never appear unkeyed: a plugin's summary carries a stand-in, `<secret #N>`,
 * that says nothing about the content, and every output replaces it like a secret value — by
 * `<secret>` on display, by a keyed hash (HMAC with the host's key) in the audit trail, the
 * saved plan and the daemon's records. The same content gets the same stand-in in a process.
 */
const stand = new Map<string, number>();
const standById: string[] = [];
const STAND_IN = /<secret #(\d+)>/g;

/**
 * `sha256:` and the first 12 hex digits of the content's hash for content that holds no secret;
 * for secret content (`secret`, by default: whether it holds a registered secret value) the
 * stand-in that every output masks, keyed where a key is known.
 */
export function contentFingerprint(content: string | Buffer, secret?: boolean): string {
  const text = typeof content === 'string' ? content : undefined;
  if (!(secret ?? (text !== undefined && holdsSecret(text))))
    return `sha256:${createHash('sha256').update(content).digest('hex').slice(0, 12)}`;
  return secretStandIn(text ?? `sha256:${createHash('sha256').update(content).digest('hex')}`);
}

/** The stand-in for a secret (content, or a hash of content known only as a hash). */
export function secretStandIn(material: string): string {
  let id = stand.get(material);
  if (id === undefined) {
    id = standById.length;
    standById.push(material);
    stand.set(material, id);
  }
  return `<secret #${id}>`;
}

/** Replace every registered secret value (and every stand-in) inside `s` (`mask` gives the stand-in). */
export function scrub(s: string, mask: (v: string) => string = () => '<secret>'): string {
  if (typeof s !== 'string') return s;
  if (standById.length && s.includes('<secret #')) {
    let out = '';
    let last = 0;
    for (const m of s.matchAll(STAND_IN)) {
      const material = standById[Number(m[1])];
      if (material === undefined) continue;
      out += scrubValues(s.slice(last, m.index), mask) + mask(material);
      last = m.index + m[0].length;
    }
    return out + scrubValues(s.slice(last), mask);
  }
  return scrubValues(s, mask);
}

function scrubValues(s: string, mask: (v: string) => string): string {
  if (!secretValues.size || s.length < MIN_SCRUB_LENGTH) return s;
  const regions = secretRegions(s, currentMatcher());
  if (!regions.length) return s;
  let out = '';
  let last = 0;
  for (const [a, b] of regions) {
    out += s.slice(last, a) + mask(s.slice(a, b));
    last = b;
  }
  return out + s.slice(last);
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

  /**
   * The values of a plugin section at nodes whose schema carries `keyword` (for example
   * `x-opd-argv`: the value becomes a process argument), with their paths under the section.
   */
  annotated(plugin: string, value: unknown, keyword: string): { path: string[]; value: unknown; note: unknown }[] {
    const out: { path: string[]; value: unknown; note: unknown }[] = [];
    const visit = (v: unknown, s: Schema | undefined, file: string, path: string[]) => {
      if (s === undefined || typeof s !== 'object') return;
      const [d, f] = this.deref(s, file);
      const note = s[keyword] ?? d?.[keyword];
      if (note !== undefined && note !== false) {
        out.push({ path, value: v, note });
        return;
      }
      if (v === null || typeof v !== 'object') return;
      for (const [k, x] of Object.entries(v)) {
        const [cs, cf] = this.child(d, f, k);
        visit(x, cs, cf, [...path, k]);
      }
    };
    const file = `${plugin}.schema.json`;
    visit(value, this.schemas.get(file) as Schema | undefined, file, []);
    return out;
  }

  /**
   * The texts of one resource (schema nodes marked `x-opd-text`: file content, unit files and
   * drop-ins, libvirt XML, LXC config, exec scripts), with their paths under the resource and the
   * keyword's value (`true`, or `key-value` for a map shown as `key = value` lines).
   */
  texts(
    plugin: string,
    collection: string,
    name: string,
    value: unknown,
  ): { path: string[]; value: unknown; kind: unknown }[] {
    if (value === undefined) return [];
    return this.annotated(plugin, { [collection]: { [name]: value } }, 'x-opd-text').map((h) => ({
      path: h.path.slice(2),
      value: h.value,
      kind: h.note,
    }));
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

/**
 * A secret never reaches an argv: a value at a schema node marked `"x-opd-argv"` (exec's argv,
 * shell, unless, onlyif and user; files' validate) that holds one of the document's secret values
 * is an invalid document (exit 65, file:line:col), because every local user can read a process's
 * arguments in /proc/PID/cmdline. The keyword's text (when it is one) is the fix to print.
 */
export function checkSecretArgv(
  r: Redactor,
  doc: { plugins?: Record<string, unknown> },
  loaded: { file: string; locate(pointer: string, atKey?: boolean): { line: number; col: number } | undefined },
  secrets: readonly string[],
): void {
  const values = secrets.filter((v) => typeof v === 'string' && v.length >= MIN_SCRUB_LENGTH);
  if (!values.length || !doc.plugins) return;
  const problems: Problem[] = [];
  for (const [plugin, section] of Object.entries(doc.plugins).sort(([a], [b]) => (a < b ? -1 : 1)))
    for (const hit of r.annotated(plugin, section, 'x-opd-argv')) {
      const items: [string[], unknown][] = Array.isArray(hit.value)
        ? hit.value.map((x, i) => [[...hit.path, String(i)], x])
        : [[hit.path, hit.value]];
      for (const [path, v] of items) {
        if (typeof v !== 'string' || !values.some((s) => v.includes(s))) continue;
        const pointer = pathToPointer(['plugins', plugin, ...path]);
        const pos = loaded.locate(pointer);
        const field = hit.path[hit.path.length - 1];
        problems.push({
          file: loaded.file,
          line: pos?.line,
          col: pos?.col,
          pointer,
          message: `a secret value is in \`${field}\`, which becomes a process argument: every local user can read it in /proc/PID/cmdline`,
          fix:
            typeof hit.note === 'string'
              ? hit.note
              : 'give the secret to the command another way than its arguments (its environment, or a file it reads)',
        });
      }
    }
  if (problems.length)
    throw invalidDocument(loaded.file, problems, {
      hint: 'a secret goes to a command through its environment (env:) or its standard input (stdin:), never its argv',
    });
}
