/**
 * Fragments and how a host's document is made of them: the fragments that select the host (by
 * name or by labels) are merged in their declared order (`order`, then id), resource by
 * resource address. Two fragments setting the same field differently is a conflict naming
 * both; the host then applies nothing new until it is fixed. Pure functions (unit-tested).
 */
import { canonical, sha256 } from '../core/canonical.js';
import { OpdError } from '../core/errors.js';
import { isObj } from '../core/diff.js';
import type { Obj } from '../core/plugin.js';
import type { StateDocument } from '../core/document.js';

export interface Selector {
  host?: string;
  labels?: Record<string, string>;
}

export interface Fragment {
  id: string;
  order: number;
  selector: Selector;
  document: StateDocument;
  /** sha256 of the canonical document */
  hash: string;
  put_at: string;
  /** a rollout in progress: only these hosts get it so far */
  only_hosts?: string[];
  /** the operator's ed25519 signature (src/fleet/sign.ts) */
  signature?: { alg: 'ed25519'; key: string; sig: string };
}

export interface HostInfo {
  host: string;
  /** the labels that select fragments: those fixed at enrollment for an enrolled host */
  labels: Record<string, string>;
  /** enrolled by the operator (`opd fleet enroll`): its announced labels never select */
  enrolled?: boolean;
  /** what the host's daemon announces (--label), shown in the status */
  announced?: Record<string, string>;
}

export function selects(f: Fragment, h: HostInfo): boolean {
  if (f.only_hosts && !f.only_hosts.includes(h.host)) return false;
  const s = f.selector;
  if (s.host !== undefined && s.host !== h.host) return false;
  for (const [k, v] of Object.entries(s.labels ?? {})) if (h.labels[k] !== v) return false;
  return s.host !== undefined || Object.keys(s.labels ?? {}).length > 0;
}

export function selectorText(s: Selector): string {
  if (s.host !== undefined) return `host=${s.host}`;
  return Object.entries(s.labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export const fragmentOrder = (a: Fragment, b: Fragment) =>
  a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export interface Conflict {
  address: string;
  pointer: string;
  fragments: [string, string];
}

export interface Merged {
  document: StateDocument;
  /** sha256 of the canonical merged document: the document hash the daemon converges */
  hash: string;
  /** the fragment ids in merge order */
  fragments: string[];
  conflict?: Conflict;
}

const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** The resource address (plugin/collection/name) a path inside `plugins` falls under. */
function addressOf(path: string[]): string {
  return path.slice(0, 3).join('/');
}

/**
 * Merge the fragments (any order given; sorted here) into one document. Fields are merged
 * deeply; a leaf (scalar or array) set by two fragments to different values is a conflict.
 */
export function mergeFragments(fragments: Fragment[]): Merged {
  const sorted = [...fragments].sort(fragmentOrder);
  const plugins: Obj = {};
  // who set each path first (pointer → fragment id)
  const owner = new Map<string, string>();
  let conflict: Conflict | undefined;
  // a subtree copied whole is owned through its root
  const ownerOf = (ptr: string): string | undefined => {
    for (let p = ptr; p.length > '/plugins'.length; p = p.slice(0, p.lastIndexOf('/')))
      if (owner.has(p)) return owner.get(p);
    return undefined;
  };
  const merge = (into: Obj, from: Obj, path: string[], id: string): void => {
    for (const [k, v] of Object.entries(from)) {
      if (conflict) return;
      const p = [...path, k];
      const ptr = '/plugins/' + p.map(esc).join('/');
      if (!(k in into)) {
        into[k] = structuredClone(v);
        owner.set(ptr, id);
        continue;
      }
      const cur = into[k];
      if (isObj(cur) && isObj(v)) {
        merge(cur, v, p, id);
        continue;
      }
      if (canonical(cur) === canonical(v)) continue;
      conflict = { address: addressOf(p), pointer: ptr, fragments: [ownerOf(ptr) ?? id, id] };
    }
  };
  for (const f of sorted) {
    merge(plugins, f.document.plugins ?? {}, [], f.id);
    if (conflict) break;
  }
  const document: StateDocument = { version: 1, plugins: plugins as StateDocument['plugins'] };
  const ids = sorted.map((f) => f.id);
  return { document, hash: sha256(canonical(document)), fragments: ids, ...(conflict ? { conflict } : {}) };
}

export function conflictError(c: Conflict, host: string): OpdError {
  return new OpdError(
    'invalid-document',
    `fragments ${JSON.stringify(c.fragments[0])} and ${JSON.stringify(c.fragments[1])} both set ${c.pointer} (${c.address}) differently for host ${host}`,
    {
      address: c.address,
      hint: 'make one fragment own that field (remove it from the other), or give both the same value; nothing new is applied on this host until then',
    },
  );
}

/** The text the daemon keeps on disk and converges: canonical JSON (its sha256 is the merged hash). */
export function documentText(m: Merged): string {
  return canonical(m.document);
}
