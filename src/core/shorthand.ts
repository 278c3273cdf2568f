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

/**
 * op-dbus's list form of a section, `{version, items: [...]}`, → the opd collection (a map): `entry`
 * gives each item's key and spec (`from` is the item's source pointer, for remapping its fields).
 */
export function itemsToCollection(
  section: Obj,
  plugin: string,
  collection: string,
  ctx: NormalizeContext,
  entry: (item: unknown, i: number, from: string) => [key: string, spec: unknown],
): Obj {
  if (!Array.isArray(section.items)) return section;
  const list: unknown[] = section.items;
  const { items: _items, version: _v, ...rest } = section;
  const out: Obj = {};
  list.forEach((item, i) => {
    const from = `/plugins/${plugin}/items/${i}`;
    const [key, spec] = entry(item, i, from);
    out[key] = spec;
    ctx.remap(`/plugins/${plugin}/${collection}/${key}`, from);
  });
  return { ...rest, [collection]: out };
}
