/**
 * The fast path of document loading: the document's value without source positions, in time
 * linear in its size. YAML goes through js-yaml's event parser (it passes the whole YAML test
 * suite and keeps no syntax tree) and a constructor of our own that gives exactly what the
 * `yaml` package's `toJS()` gives under opd's options (YAML 1.2 core schema, plain objects,
 * scalar keys as strings); JSON through JSON.parse. Anything the constructor does not reproduce
 * exactly — tags, anchors and aliases, directives, several documents, a collection as a key,
 * two keys that are the same string (a duplicate, or `1` beside `"1"`) — and every syntax error
 * answers `undefined` with the reason: document.ts then reads the text the slow, exact way
 * (the `yaml` package), which also reports problems with today's file:line:col.
 */
import { EVENT_ID, getScalarValue, parseEvents, type Event } from 'js-yaml';

export type FastResult =
  | { ok: true; raw: unknown; nodes: number; depth: number }
  | {
      ok: false;
      why: 'syntax' | 'unsupported' | 'duplicate' | 'too-deep' | 'too-many-nodes';
      at?: number;
      message?: string;
      nodes?: number;
    };

const NO_RANGE = -1;
const own = Object.prototype.hasOwnProperty;

/** The `yaml` package's core schema (yaml/dist/schema/core), in its order: null, bool, int, float. */
export function resolvePlain(s: string): unknown {
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  const c = s.charCodeAt(0);
  // only a digit, a sign, a dot or one of tTfF can start anything but a string
  if (c === 116 || c === 84 || c === 102 || c === 70) {
    if (s === 'true' || s === 'True' || s === 'TRUE') return true;
    if (s === 'false' || s === 'False' || s === 'FALSE') return false;
    return s;
  }
  if (!((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)) return s;
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.substring(2), 8);
  if (/^[-+]?[0-9]+$/.test(s)) return parseInt(s, 10);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.substring(2), 16);
  if (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(s))
    return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity;
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s)) return parseFloat(s);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s)) return parseFloat(s);
  return s;
}

interface Frame {
  seq: boolean;
  value: Record<string, unknown> | unknown[];
  key: string | undefined;
}

/** The same key as `yaml`'s toJS makes of a scalar key (stringifyKey); undefined: not taken here. */
function keyOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  // null keys (`: x`, `~: x`) are left to the exact parse: js-yaml accepts a compact mapping after
  // an empty key (`: a: b`), which the YAML spec and the yaml package refuse
  if (typeof v === 'number') return Number.isNaN(v) ? undefined : String(v); // .nan keys are never duplicates in yaml
  if (typeof v === 'boolean') return String(v);
  return undefined;
}

function set(obj: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(obj, k, { value: v, writable: true, enumerable: true, configurable: true });
  else obj[k] = v;
}

/** The start offset of an event's node in the text (for a located message). */
function offsetOf(e: Event): number | undefined {
  if ('valueStart' in e && e.valueStart !== NO_RANGE) return e.valueStart;
  if ('start' in e) return e.start;
  return undefined;
}

/**
 * Parse YAML (JSON included) into plain values. `maxNodes`: a document with more nodes (keys,
 * values, items, collections) is answered with `too-many-nodes` before any value is built.
 */
export function fastYaml(text: string, maxNodes: number, maxDepth: number): FastResult {
  let events: Event[];
  try {
    events = parseEvents(text, { maxDepth });
  } catch (err) {
    const msg = (err as { reason?: string; message?: string }).reason ?? (err as Error).message;
    const at = (err as { mark?: { position?: number } }).mark?.position;
    return { ok: false, why: /maxDepth/.test(msg) ? 'too-deep' : 'syntax', at, message: msg };
  }
  let nodes = 0;
  for (const e of events) if (e.type !== EVENT_ID.POP && e.type !== EVENT_ID.DOCUMENT) nodes++;
  if (nodes > maxNodes) return { ok: false, why: 'too-many-nodes', nodes };
  const stack: Frame[] = [];
  let depth = 0; // as depthOf in document.ts: the deepest value's number of enclosing collections
  let root: unknown;
  let documents = 0;
  const unsupported = (e: Event, message: string): FastResult => ({
    ok: false,
    why: 'unsupported',
    at: offsetOf(e),
    message,
  });
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    let value: unknown;
    switch (e.type) {
      case EVENT_ID.DOCUMENT:
        if (++documents > 1) return unsupported(e, 'more than one document');
        if (e.directives.length) return unsupported(e, 'a directive (%YAML, %TAG)');
        continue;
      case EVENT_ID.ALIAS:
        return unsupported(e, 'an alias');
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        if (e.anchorStart !== NO_RANGE) return unsupported(e, 'an anchor');
        if (e.tagStart !== NO_RANGE) return unsupported(e, 'a tag');
        const top = stack[stack.length - 1];
        if (top && !top.seq && top.key === undefined) return unsupported(e, 'a collection as a key');
        stack.push({
          seq: e.type === EVENT_ID.SEQUENCE,
          value: e.type === EVENT_ID.SEQUENCE ? [] : {},
          key: undefined,
        });
        continue;
      }
      case EVENT_ID.POP: {
        const f = stack.pop();
        if (!f) continue; // the end of the document
        value = f.value;
        break;
      }
      case EVENT_ID.SCALAR: {
        if (e.anchorStart !== NO_RANGE) return unsupported(e, 'an anchor');
        if (e.tagStart !== NO_RANGE) return unsupported(e, 'a tag');
        const s = getScalarValue(text, e);
        value = e.style === 1 /* plain */ ? resolvePlain(s) : s;
        const top = stack[stack.length - 1];
        if (top && !top.seq && top.key === undefined) {
          const k = keyOf(value);
          if (k === undefined) return unsupported(e, 'a key that is not a string, number or boolean');
          // the same string twice: a duplicate key (or `1` beside `"1"`, which yaml merges)
          if (own.call(top.value, k)) return { ok: false, why: 'duplicate', at: offsetOf(e), message: k };
          top.key = k;
          continue;
        }
        break;
      }
    }
    const top = stack[stack.length - 1];
    if (stack.length > depth) depth = stack.length;
    if (!top) root = value;
    else if (top.seq) (top.value as unknown[]).push(value);
    else {
      set(top.value as Record<string, unknown>, top.key!, value);
      top.key = undefined;
    }
  }
  if (documents !== 1) return { ok: false, why: 'unsupported', message: 'no document' };
  return { ok: true, raw: root, nodes, depth };
}

/**
 * JSON that JSON.parse accepted: whether a key appears twice in one object (JSON.parse keeps the
 * last silently; opd refuses it, as YAML does). Counts the keys of the text (a string followed by
 * `:`) and of the value: they differ exactly when a key was repeated. Also the value's nodes and
 * depth. Linear, no allocation per key.
 */
export function jsonNodes(text: string, value: unknown): { nodes: number; depth: number; duplicates: boolean } {
  let inText = 0;
  for (let i = text.indexOf('"'); i !== -1;) {
    // i: an opening quote; j: its closing quote (one not escaped by an odd number of backslashes)
    let j = text.indexOf('"', i + 1);
    for (;;) {
      let k = j - 1;
      while (text.charCodeAt(k) === 92) k--;
      if ((j - 1 - k) % 2 === 0) break;
      j = text.indexOf('"', j + 1);
    }
    let k = j + 1;
    for (let c = text.charCodeAt(k); c === 32 || c === 9 || c === 10 || c === 13; c = text.charCodeAt(++k));
    if (text.charCodeAt(k) === 58) inText++; // :
    i = text.indexOf('"', j + 1);
  }
  let keys = 0;
  let nodes = 0;
  let depth = 0;
  const stack: unknown[] = [value];
  const depths: number[] = [0];
  while (stack.length) {
    const v = stack.pop();
    const d = depths.pop()!;
    nodes++;
    if (d > depth) depth = d;
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v))
      for (const x of v) {
        stack.push(x);
        depths.push(d + 1);
      }
    else {
      const ks = Object.keys(v);
      keys += ks.length;
      nodes += ks.length;
      for (const k of ks) {
        stack.push((v as Record<string, unknown>)[k]);
        depths.push(d + 1);
      }
    }
  }
  return { nodes, depth, duplicates: keys !== inText };
}

/**
 * Source positions from the fast parser's events, for documents too big for the exact parse:
 * the position of a key or value named by a path, as the exact parse gives it (a quoted scalar at
 * its quote, a block scalar at its `|` or `>`).
 */
export class EventLocator {
  private readonly events: Event[];
  private lineStarts: number[] | undefined;

  constructor(private readonly text: string) {
    this.events = parseEvents(text, { maxDepth: 1000 });
  }

  /** The index just after the node that starts at event i. */
  private skip(i: number): number {
    const e = this.events[i];
    if (e.type !== EVENT_ID.MAPPING && e.type !== EVENT_ID.SEQUENCE) return i + 1;
    let depth = 0;
    for (let j = i; j < this.events.length; j++) {
      const t = this.events[j].type;
      if (t === EVENT_ID.MAPPING || t === EVENT_ID.SEQUENCE) depth++;
      else if (t === EVENT_ID.POP && --depth === 0) return j + 1;
    }
    return this.events.length;
  }

  private offset(i: number): number | undefined {
    const e = this.events[i];
    if (e.type === EVENT_ID.MAPPING || e.type === EVENT_ID.SEQUENCE) return e.start;
    if (e.type !== EVENT_ID.SCALAR || e.valueStart === NO_RANGE) return undefined;
    if (e.style === 2 || e.style === 3) return e.valueStart - 1; // the quote
    if (e.style === 4 || e.style === 5)
      return Math.max(this.text.lastIndexOf('|', e.valueStart), this.text.lastIndexOf('>', e.valueStart));
    return e.valueStart;
  }

  private keyOf(i: number): string | undefined {
    const e = this.events[i];
    if (e.type !== EVENT_ID.SCALAR) return undefined;
    const s = getScalarValue(this.text, e);
    return String(e.style === 1 ? resolvePlain(s) : s);
  }

  locate(path: string[], atKey: boolean): { line: number; col: number } | undefined {
    let i = this.events.findIndex((e) => e.type !== EVENT_ID.DOCUMENT);
    if (i < 0 || this.events[i].type === EVENT_ID.POP) return undefined;
    let best = this.offset(i);
    for (let p = 0; p < path.length; p++) {
      const e = this.events[i];
      const last = p === path.length - 1;
      let next: number | undefined;
      if (e.type === EVENT_ID.MAPPING) {
        for (let j = i + 1; this.events[j] && this.events[j].type !== EVENT_ID.POP;) {
          const v = this.skip(j);
          if (this.keyOf(j) === path[p]) {
            best = this.offset(j) ?? best;
            next = v;
            const t = this.events[v]?.type;
            if (last && !atKey && t !== EVENT_ID.MAPPING && t !== EVENT_ID.SEQUENCE) best = this.offset(v) ?? best;
            break;
          }
          j = this.skip(v);
        }
      } else if (e.type === EVENT_ID.SEQUENCE) {
        let j = i + 1;
        for (let n = Number(path[p]); n > 0 && this.events[j] && this.events[j].type !== EVENT_ID.POP; n--)
          j = this.skip(j);
        if (this.events[j] && this.events[j].type !== EVENT_ID.POP && Number.isInteger(Number(path[p]))) {
          next = j;
          best = this.offset(j) ?? best;
        }
      }
      if (next === undefined) break;
      i = next;
    }
    if (best === undefined) return undefined;
    if (!this.lineStarts) {
      this.lineStarts = [0];
      for (let k = this.text.indexOf('\n'); k !== -1; k = this.text.indexOf('\n', k + 1)) this.lineStarts.push(k + 1);
    }
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= best) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: best - this.lineStarts[lo] + 1 };
  }
}
