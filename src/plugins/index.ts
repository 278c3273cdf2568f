/**
 * The plugin registry, derived from the plugins' manifests (src/plugins/manifests.ts, one line
 * per plugin). Manifests import no backend code, so the registry is cheap; a plugin's code loads
 * on first use (`manifest.load()`), so that `opd --version` stays fast.
 */
import type { PluginManifest, SettingSpec } from '../core/manifest.js';
import { settingsOf } from '../core/manifest.js';
import type { Plugin } from '../core/plugin.js';
import type { PluginRegistry } from '../core/registry.js';
import type { SemanticRule } from '../core/semantic.js';
import * as all from './manifests.js';

/** Every manifest, by name (sorted). */
export const MANIFESTS: readonly PluginManifest[] = Object.values(all as Record<string, PluginManifest>).sort((a, b) =>
  a.name.localeCompare(b.name),
);
const byName = new Map(MANIFESTS.map((m) => [m.name, m]));

export const PLUGIN_NAMES = MANIFESTS.map((m) => m.name);

/** The settings every plugin reads (flags and environment variables), each once. */
export const PLUGIN_SETTINGS: readonly SettingSpec[] = settingsOf(MANIFESTS);

/** Every plugin's semantic rules, plugin by plugin. */
export const PLUGIN_RULES: readonly SemanticRule[] = MANIFESTS.flatMap((m) => m.rules ?? []);

/** Every plugin's tunables in one table (a name is one plugin's: test/unit/plugins/manifests.test.ts). */
export const PLUGIN_TUNABLES: Readonly<Record<string, number>> = Object.assign(
  {},
  ...MANIFESTS.map((m) => m.tunables ?? {}),
) as Record<string, number>;

/** The plugins a document with these sections needs: the ones it names, and those adopting from them (Plugin.adopt: op-dbus forms). */
export function pluginsFor(sections: string[]): string[] {
  const named = new Set(sections.filter((s) => byName.has(s)));
  for (const m of MANIFESTS) if (m.adoptsFrom?.some((s) => sections.includes(s))) named.add(m.name);
  return [...named].sort();
}

/** Load only the plugins a document with these sections needs (start-up proportional to the document). */
export async function loadFor(sections: string[]): Promise<Map<string, Plugin>> {
  const names = pluginsFor(sections);
  const loaded = await Promise.all(names.map((n) => loadPlugin(n)));
  return new Map(names.map((n, i) => [n, loaded[i]]));
}

const cache = new Map<string, Plugin>();

export async function loadPlugin(name: string): Promise<Plugin> {
  const hit = cache.get(name);
  if (hit) return hit;
  const m = byName.get(name);
  if (!m) throw new Error(`unknown plugin ${name}`);
  const p = (await m.load()).default;
  cache.set(name, p);
  return p;
}

export async function loadAll(): Promise<Map<string, Plugin>> {
  const m = new Map<string, Plugin>();
  for (const n of PLUGIN_NAMES) m.set(n, await loadPlugin(n));
  return m;
}

/** The registry the cli, daemon and fleet pass to the core (it never imports plugins itself). */
export const registry: PluginRegistry = {
  names: PLUGIN_NAMES,
  manifests: MANIFESTS,
  rules: PLUGIN_RULES,
  loadFor,
  loadAll,
};
