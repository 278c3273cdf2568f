/** firewall as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest, SettingSpec } from '../../core/manifest.js';
import { NETNS } from '../../host/settings.js';

export const UFW_DIR: SettingSpec = {
  key: 'ufwDir',
  env: 'OPD_UFW_DIR',
  type: 'path',
  default: '/etc/ufw',
  help: "where the firewall plugin reads ufw's rules",
};

export const TUNABLES = {
  /** One ufw command (it reloads the whole firewall). */
  ufwMs: 120_000,
} as const;

const PRIVACY =
  'op-dbus privacy router (WireGuard/WARP/XRay chain) is not supported: build it from plugins.lxc containers, plugins.ovs bridges and plugins.firewall rules';

const manifest: PluginManifest = {
  name: 'firewall',
  collections: ['tables', 'ufw_rules'],
  settings: [NETNS, UFW_DIR],
  tunables: TUNABLES,
  opdbus: {
    topLevel: {
      security: 'op-dbus top-level `security` is not a state section: use plugins.firewall for nftables rules',
    },
    sections: { privacy: PRIVACY, privacy_router: PRIVACY },
    keys: {
      rules:
        'write nftables rules under firewall.tables (see schema/firewall.schema.json); an accept rule per port goes into an input chain',
      default_policy: 'give the chains of firewall.tables their policy (input: drop)',
    },
  },
  load: () => import('./index.js'),
};
export default manifest;
