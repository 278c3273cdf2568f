/** net as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';
import { NETNS } from '../../host/settings.js';
import { RULES } from './rules.js';

const manifest: PluginManifest = {
  name: 'net',
  collections: ['interfaces'],
  settings: [NETNS],
  rules: RULES,
  opdbus: {
    topLevel: {
      network:
        'op-dbus top-level `network` is not a state section: put interfaces under plugins.net.interfaces and Open vSwitch bridges under plugins.ovs.bridges',
    },
    sections: {
      network:
        'op-dbus `network` plugin form (bridges with bridge_ports/internal_ports/address, ovsdb settings) is not supported: use plugins.net.interfaces (addresses) and plugins.ovs.bridges (Open vSwitch)',
      network_manager: 'op-dbus NetworkManager plugin is not supported: use plugins.net',
    },
  },
  load: () => import('./index.js'),
};
export default manifest;
