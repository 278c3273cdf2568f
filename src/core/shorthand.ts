/**
 * Helpers of plugin normalizers. Shorthand forms of a section (`groups: { libvirt: {…} }`,
 * `sysctl: { net.ipv4.ip_forward: 1 }`, `files: { /etc/x: {…} }`): entries written at the top of
 * the section move into its collection, with their error locations remapped to where the user
 * wrote them; op-dbus's renamed sections and `items` lists; a map over a collection's entries.
 */
import { isObj } from './diff.js';
import type { NormalizeContext, Obj } from './plugin.js';

const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/** `pick` returns the collection entry for a top-level key that is shorthand, undefined for a real key of the section. */
export function liftShorthand(
  section: Obj,
  plugin: string,
  collection: string,
  ctx: NormalizeContext,
  pick: (key: string, value: unknown) => unknown,
): { out: Obj; entries: Obj; lifted: boolean } {
  const out: Obj = {};
  const entries: Obj = isObj(section[collection]) ? { ...section[collection] } : {};
  let lifted = false;
  for (const [k, v] of Object.entries(section)) {
    if (k === collection && isObj(v)) continue;
    const e = k === collection ? undefined : pick(k, v);
    if (e === undefined) {
      out[k] = v;
      continue;
    }
    entries[k] = e;
    lifted = true;
    ctx.remap(`/plugins/${plugin}/${collection}/${esc(k)}`, `/plugins/${plugin}/${esc(k)}`);
  }
  return { out, entries, lifted };
}

/**
 * op-dbus's list form `{version, items: [...]}` → the section's collection: `entry` gives each item's
 * key and spec (and may remap the item's fields); the entry's errors point at the item in the list.
 */
export function itemsToCollection(
  section: Obj,
  plugin: string,
  collection: string,
  ctx: NormalizeContext,
  entry: (item: unknown, i: number) => [key: string, spec: unknown],
): Obj {
  if (!Array.isArray(section.items)) return section;
  const { items, version: _v, ...rest } = section;
  const map: Obj = {};
  (items as unknown[]).forEach((it, i) => {
    const [key, spec] = entry(it, i);
    map[key] = spec;
    ctx.remap(`/plugins/${plugin}/${collection}/${esc(key)}`, `/plugins/${plugin}/items/${i}`);
  });
  return { ...rest, [collection]: map };
}

/** A section written under another plugin's name (op-dbus `dnsresolver`, `pcidecl`) moves to `to`, unless `to` is there already. */
export function adoptRenamed(plugins: Record<string, unknown>, from: string, to: string, ctx: NormalizeContext): void {
  if (plugins[from] === undefined || plugins[to] !== undefined) return;
  plugins[to] = plugins[from];
  delete plugins[from];
  ctx.remap(`/plugins/${to}`, `/plugins/${from}`);
}

/** A collection with `f` applied to each entry that is an object; other entries stay as written (the schema reports them). */
export function mapEntries(collection: Obj, f: (spec: Obj, name: string) => unknown): Obj {
  const out: Obj = {};
  for (const [n, spec] of Object.entries(collection)) out[n] = isObj(spec) ? f(spec, n) : spec;
  return out;
}
