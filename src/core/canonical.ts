/** Canonical JSON (sorted keys, no whitespace; RFC 8785 style) and hashing. */
import { createHash, createHmac } from 'node:crypto';

export function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value) ?? 'null';
  }
  // fast path: lay the value out so that JSON.stringify (native) writes exactly the canonical
  // text; only objects whose keys are out of order (or that have a toJSON) are copied
  const laid = layOut(value);
  return laid === SLOW ? canonicalSlow(value) : JSON.stringify(laid);
}

/** The reference definition (and the path for objects JSON.stringify cannot be made to order). */
function canonicalSlow(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalSlow(v === undefined ? null : v)).join(',') + ']';
  const keys = Object.keys(value as object)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return (
    '{' +
    keys.map((k) => JSON.stringify(k) + ':' + canonicalSlow((value as Record<string, unknown>)[k])).join(',') +
    '}'
  );
}

const SLOW = Symbol('slow');
const INDEX_KEY = /^(?:0|[1-9]\d*)$/;

/**
 * `value` itself when JSON.stringify already writes it canonically, else a copy that it does
 * (keys sorted, function and symbol members as null, toJSON ignored), sharing unchanged
 * subtrees. SLOW for what no plain object can hold in sorted order: integer-like keys (they
 * always enumerate first) and `__proto__`.
 */
function layOut(v: object): unknown {
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (x === null || typeof x !== 'object') continue;
      const y = layOut(x);
      if (y === SLOW) return SLOW;
      if (y !== x) (out ??= v.slice())[i] = y;
    }
    return out ?? v;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  let copy = typeof o.toJSON === 'function';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (i > 0 && keys[i - 1] > k) copy = true;
    const c0 = k.charCodeAt(0);
    if ((c0 === 95 && k === '__proto__') || (c0 >= 48 && c0 <= 57 && keys.length > 1 && INDEX_KEY.test(k))) return SLOW;
  }
  if (copy) keys.sort();
  let out: Record<string, unknown> | undefined = copy ? {} : undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const x = o[k];
    let y: unknown = x;
    if (x !== null && typeof x === 'object') {
      y = layOut(x);
      if (y === SLOW) return SLOW;
    } else if (typeof x === 'function' || typeof x === 'symbol') y = null;
    if (out) {
      if (y !== undefined) out[k] = y;
    } else if (y !== x) {
      out = {};
      for (let j = 0; j < i; j++) if (o[keys[j]] !== undefined) out[keys[j]] = o[keys[j]];
      out[k] = y;
    }
  }
  return out ?? v;
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hmac(key: string | Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

/** Fingerprint of a resource state: sha256 of its canonical JSON (null when absent). */
export function fingerprint(value: unknown): string | null {
  return value === undefined ? null : sha256(canonical(value));
}

/** Deep copy with object keys sorted (for deterministic output). */
export function sortKeys<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value as object).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
  return out as T;
}
