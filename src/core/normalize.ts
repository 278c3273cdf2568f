/**
 * Normalization: foreign input forms (op-dbus documents, arrays of named objects) become
 * opd's form before validation; pointers are remapped so errors still point at the source.
 */
import type { LoadedDocument } from './document.js';
import { pathToPointer } from './document.js';
import type { PluginManifest } from './manifest.js';
import type { NormalizeContext, Obj, Plugin } from './plugin.js';
import { isObj } from './diff.js';
import { opdbusDocument } from './opdbus.js';

/** `manifests`: every plugin's (the registry's), for the op-dbus forms they stand in for. */
export function normalizeDocument(
  loaded: LoadedDocument,
  plugins: Map<string, Plugin>,
  manifests: readonly PluginManifest[],
): unknown {
  const ctx: NormalizeContext = {
    remap: (to, from) => loaded.remaps.set(to, from),
    warn: (pointer, message, fix) => loaded.warnings.push({ pointer, message, ...(fix ? { fix } : {}) }),
    refuse: (pointer, message, fix) => loaded.refusals.push({ pointer, message, ...(fix ? { fix } : {}) }),
  };
  loaded.warnings.length = 0;
  loaded.refusals.length = 0;
  // opdbusDocument copies the whole document (normalization then changes the copy, never loaded.raw)
  const raw = opdbusDocument(loaded.raw, plugins, ctx, manifests);
  if (!isObj(raw) || !isObj(raw.plugins)) return raw;
  const doc: Obj = raw;
  const sections = doc.plugins as Record<string, unknown>;
  for (const name of [...plugins.keys()].sort()) plugins.get(name)!.adopt?.(sections, ctx);
  for (const [name, p] of plugins) {
    if (!(name in sections)) continue;
    if (p.normalize) sections[name] = p.normalize(sections[name], ctx);
  }
  return doc;
}

/**
 * Helper for plugins: an array of named objects (the op-dbus form) becomes a map keyed by
 * `key`; `base` is the pointer of the collection. Items without a usable key stay as
 * `#<index>` so validation reports them at their position.
 */
export function arrayToMap(
  items: unknown,
  key: string,
  base: string,
  ctx: NormalizeContext,
  rename: (o: Obj) => Obj = (o) => o,
): unknown {
  if (!Array.isArray(items)) return items;
  const out: Obj = {};
  items.forEach((item, i) => {
    const k = isObj(item) && typeof item[key] === 'string' ? (item[key] as string) : `#${i}`;
    const rest = isObj(item) ? { ...item } : item;
    if (isObj(rest)) delete rest[key];
    // an own key whatever the name (`__proto__` stays visible to validation, which refuses it)
    Object.defineProperty(out, k, {
      value: isObj(rest) ? rename(rest) : rest,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    ctx.remap(`${base}/${pathToPointer([k]).slice(1)}`, `${base}/${i}`);
  });
  return out;
}
