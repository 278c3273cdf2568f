/** The plugin registry. Plugins load lazily so that `opd --version` stays fast. */
import type { Plugin } from '../core/plugin.js';
import type { PluginRegistry } from '../core/registry.js';

const loaders: Record<string, () => Promise<{ default: Plugin }>> = {
  ovs: () => import('./ovs/index.js'),
  databases: () => import('./databases/index.js'),
  lxc: () => import('./lxc/index.js'),
  net: () => import('./net/index.js'),
  firewall: () => import('./firewall/index.js'),
  checks: () => import('./checks/index.js'),
  packages: () => import('./packages/index.js'),
  systemd: () => import('./systemd/index.js'),
  files: () => import('./files/index.js'),
  users: () => import('./users/index.js'),
  groups: () => import('./groups/index.js'),
  kmod: () => import('./kmod/index.js'),
  sysctl: () => import('./sysctl/index.js'),
  libvirt: () => import('./libvirt/index.js'),
  exec: () => import('./exec/index.js'),
  openflow: () => import('./openflow/index.js'),
  dns: () => import('./dns/index.js'),
  pci: () => import('./pci/index.js'),
};

export const PLUGIN_NAMES = Object.keys(loaders).sort();

/**
 * Plugins that adopt entries of other sections (Plugin.adopt: op-dbus forms): plugin → the
 * sections it takes from. A document naming one of those loads the adopting plugin too.
 */
const ADOPTS_FROM: Record<string, string[]> = {
  ovs: ['net', 'openflow'],
  packages: ['packagekit'],
  dns: ['dnsresolver'],
  pci: ['pcidecl'],
};

/** The plugins a document with these sections needs: the ones it names, and those adopting from them. */
export function pluginsFor(sections: string[]): string[] {
  const named = new Set(sections.filter((s) => Object.hasOwn(loaders, s)));
  for (const [p, from] of Object.entries(ADOPTS_FROM)) if (from.some((s) => sections.includes(s))) named.add(p);
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
  const load = Object.hasOwn(loaders, name) ? loaders[name] : undefined;
  if (!load) throw new Error(`unknown plugin ${name}`);
  const p = (await load()).default;
  cache.set(name, p);
  return p;
}

export async function loadAll(): Promise<Map<string, Plugin>> {
  const m = new Map<string, Plugin>();
  for (const n of PLUGIN_NAMES) m.set(n, await loadPlugin(n));
  return m;
}

/** The registry the cli, daemon and fleet pass to the core (it never imports plugins itself). */
export const registry: PluginRegistry = { names: PLUGIN_NAMES, loadFor, loadAll };
