/**
 * What the core needs from the plugin registry. The registry itself lives with the plugins
 * (src/plugins/index.ts) and is passed in by the caller (cli, daemon, fleet, tests): the core
 * never imports a plugin, so it runs with any set of plugins.
 */
import type { PluginManifest } from './manifest.js';
import type { Plugin } from './plugin.js';
import type { SemanticRule } from './semantic.js';

export interface PluginRegistry {
  /** every plugin name, sorted */
  readonly names: readonly string[];
  /** every plugin's manifest (src/core/manifest.ts), sorted by name: what opd knows of a plugin without loading it */
  readonly manifests: readonly PluginManifest[];
  /** every plugin's semantic rules (src/core/semantic.ts runs them at validation) */
  readonly rules: readonly SemanticRule[];
  /** the plugins a document with these sections needs (the named ones and those adopting from them) */
  loadFor(sections: string[]): Promise<Map<string, Plugin>>;
  /** every plugin */
  loadAll(): Promise<Map<string, Plugin>>;
}
