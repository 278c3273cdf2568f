/**
 * `when:` on a resource: include it only on hosts whose facts match (src/core/facts.ts).
 *
 *   kmod:
 *     modules:
 *       "kvm_${fact.cpu_vendor}": { loaded: true, options: nested=1, when: { modules_loadable: true, cpu_vendor: [intel, amd] } }
 *   systemd:
 *     units:
 *       lxcfs.service: { enabled: true, active_state: active, when: { container: false } }
 *
 * Every fact named must equal the value given, or one of the list. The schema checks the names
 * (an unknown one is an invalid document, with "did you mean") and the values' types; this runs
 * after validation: a resource whose condition does not hold leaves the document (it is not
 * managed on this host: not read, not planned, not applied), `depends_on` entries naming it are
 * dropped, and `when` is removed from the others, so plugins never see it.
 */
import type { StateDocument } from './document.js';
import type { Obj, Plugin } from './plugin.js';
import { isObj } from './diff.js';
import { whenFailure, whenHolds, type HostFacts } from './facts.js';
import { pathToPointer } from './document.js';

/** A resource left out on this host. */
export interface Excluded {
  address: string;
  /** its JSON pointer in the document (for file:line:col) */
  pointer: string;
  /** which facts did not match */
  reason: string;
}

export function applyWhen(doc: StateDocument, plugins: ReadonlyMap<string, Plugin>, facts: HostFacts): Excluded[] {
  const out: Excluded[] = [];
  const sections = Object.entries(doc.plugins).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [name, section] of sections) {
    const p = plugins.get(name);
    if (!p || !isObj(section)) continue;
    for (const c of p.collections) {
      const coll = section[c];
      if (!isObj(coll)) continue;
      for (const [res, spec] of Object.entries(coll)) {
        if (!isObj(spec) || !('when' in spec)) continue;
        const cond = spec.when as Obj;
        if (whenHolds(cond, facts)) {
          delete spec.when;
          continue;
        }
        out.push({
          address: `${name}/${c}/${res}`,
          pointer: pathToPointer(['plugins', name, c, res, 'when']),
          reason: whenFailure(cond, facts),
        });
        delete coll[res];
      }
    }
  }
  if (!out.length) return out;
  const gone = new Set(out.map((e) => e.address));
  for (const [name, section] of sections) {
    const p = plugins.get(name);
    if (!p || !isObj(section)) continue;
    for (const c of p.collections) {
      const coll = section[c];
      if (!isObj(coll)) continue;
      for (const spec of Object.values(coll))
        if (isObj(spec) && Array.isArray(spec.depends_on)) {
          const kept = (spec.depends_on as string[]).filter((a) => !gone.has(a));
          if (kept.length) spec.depends_on = kept;
          else delete spec.depends_on;
        }
    }
  }
  return out;
}
