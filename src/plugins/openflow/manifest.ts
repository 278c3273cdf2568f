/** openflow as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';
import { OVS_DB } from '../../host/settings.js';

const manifest: PluginManifest = {
  name: 'openflow',
  collections: ['bridges'],
  settings: [OVS_DB],
  opdbus: {
    topLevel: {
      openflow: 'op-dbus top-level `openflow` is not a state section: put flows under plugins.openflow',
    },
  },
  load: () => import('./index.js'),
};
export default manifest;
