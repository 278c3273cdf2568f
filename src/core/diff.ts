/**
 * Per-resource diff: project the current state onto what the document names, strip meta
 * keys, and compare with fast-json-patch (RFC 6902).
 */
import fjp from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { Obj, Plugin, ResourceDiff } from './plugin.js';

/** Keys that steer opd and are never compared with the host. */
export const META_KEYS = new Set(['depends_on', 'allow_destroy', 'prune']);

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isAbsent(v: unknown): boolean {
  return isObj(v) && v.state === 'absent';
}

/**
 * The desired value as compared: meta keys removed, `state: present` removed, and children
 * marked `state: absent` removed (their removal then shows as a `remove` operation). Copy on
 * write: a value with nothing to remove is returned as it is (the document's own object, which
 * nothing downstream changes), so that 10,000 ports are not copied for each diff.
 */
export function desiredForCompare(desired: unknown): unknown {
  if (!isObj(desired)) return desired;
  const keys = Object.keys(desired);
  let out: Obj | undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const v = desired[k];
    const drop = META_KEYS.has(k) || (k === 'state' && v === 'present') || isAbsent(v);
    const w = drop ? undefined : desiredForCompare(v);
    if (!out && (drop || w !== v)) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j]] = desired[keys[j]];
    }
    if (out && !drop) out[k] = w;
  }
  return out ?? desired;
}

/**
 * Keep only what the document names. A key of a pruned collection keeps all current members
 * (those not named become removals). A child marked absent keeps its current value (if any).
 */
export function project(current: unknown, desired: unknown): unknown {
  if (!isObj(current) || !isObj(desired)) return current;
  const prune = isObj(desired.prune) ? desired.prune : {};
  const out: Obj = {};
  for (const k of Object.keys(desired)) {
    const dv = desired[k];
    if (META_KEYS.has(k) || !(k in current)) continue;
    if (k === 'state' && (dv === 'present' || dv === 'absent')) continue;
    const cv = current[k];
    if (isAbsent(dv)) {
      out[k] = cv;
      continue;
    }
    if (prune[k] === true && isObj(cv) && isObj(dv)) {
      const m: Obj = {};
      for (const name of Object.keys(cv)) m[name] = name in dv ? project(cv[name], dv[name]) : cv[name];
      out[k] = m;
      continue;
    }
    out[k] = project(cv, dv);
  }
  return out;
}

export function compare(current: unknown, desired: unknown): Operation[] {
  return fjp.compare((current ?? {}) as object, (desired ?? {}) as object, false);
}

/** Diff one plugin section: one ResourceDiff per named resource (and per pruned member). */
export function diffSection(plugin: Plugin, desired: Obj, current: Obj, allowDestroy: boolean): ResourceDiff[] {
  const out: ResourceDiff[] = [];
  const faults = plugin.faults ? plugin.faults(current, desired) : {};
  const faultsOf = (address: string): Record<string, string> | undefined => {
    let hit: Record<string, string> | undefined;
    for (const [a, m] of Object.entries(faults)) if (a === address || a.startsWith(address + '/')) (hit ??= {})[a] = m;
    return hit;
  };
  const prune = isObj(desired.prune) ? desired.prune : {};
  for (const collection of plugin.collections) {
    const d = (isObj(desired[collection]) ? desired[collection] : {}) as Obj;
    const c = (isObj(current[collection]) ? current[collection] : {}) as Obj;
    const names = new Set(Object.keys(d));
    if (prune[collection] === true) for (const n of Object.keys(c)) names.add(n);
    for (const name of [...names].sort()) {
      const dv = d[name] as Obj | undefined;
      const cvRaw = c[name] as Obj | undefined;
      const exists = cvRaw !== undefined && !isAbsent(cvRaw);
      const address = `${plugin.name}/${collection}/${name}`;
      const resAllow = allowDestroy || (isObj(dv) && dv.allow_destroy === true);
      const push = (action: ResourceDiff['action'], cur: Obj | undefined, want: Obj | undefined, ops: Operation[]) => {
        // faults reach a create too: a plugin may refuse to create what cannot work (a firewall
        // table whose accepts another table's drop policy overrides)
        const f = want === undefined ? undefined : faultsOf(address);
        out.push({
          plugin: plugin.name,
          collection,
          name,
          address,
          action: action === 'noop' && f ? 'update' : action,
          current: cur,
          desired: want,
          ops,
          allowDestroy: resAllow,
          ...(f ? { faults: f } : {}),
        });
      };
      if (dv === undefined || isAbsent(dv)) {
        if (exists) push('delete', cvRaw, undefined, [{ op: 'remove', path: '' } as Operation]);
        else push('noop', undefined, undefined, []);
        continue;
      }
      const want = desiredForCompare(dv) as Obj;
      if (!exists) {
        push('create', undefined, want, compare({}, want));
        continue;
      }
      const cur = project(cvRaw, dv) as Obj;
      const ops = compare(cur, want);
      push(ops.length ? 'update' : 'noop', cur, want, ops);
    }
  }
  return out;
}
