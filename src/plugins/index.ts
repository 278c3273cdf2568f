/** The plugin registry. Plugins load lazily so that `opd --version` stays fast. */
import type { Plugin } from '../core/plugin.js';

const loaders: Record<string, () => Promise<{ default: Plugin }>> = {
  ovs: () => import('./ovs/index.js'),
  databases: () => import('./databases/index.js'),
  lxc: () => import('./lxc/index.js'),
  net: () => import('./net/index.js'),
  firewall: () => import('./firewall/index.js'),
  checks: () => import('./checks/index.js'),
  packages: () => import('./packages/index.js'),
  systemd: () => import('./systemd/index.js'),
  files: () => import('./files/index.js'), users: () => import('./users/index.js'), groups: () => import('./groups/index.js'), kmod: () => import('./kmod/index.js'), sysctl: () => import('./sysctl/index.js'),
  libvirt: () => import('./libvirt/index.js'),
  openflow: () => import('./openflow/index.js'),
  dns: () => import('./dns/index.js'),
  pci: () => import('./pci/index.js'),
};

export const PLUGIN_NAMES = Object.keys(loaders).sort();

const cache = new Map<string, Plugin>();

export async function loadPlugin(name: string): Promise<Plugin> {
  const hit = cache.get(name);
  if (hit) return hit;
  const load = loaders[name];
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
