/** pci as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';

const manifest: PluginManifest = {
  name: 'pci',
  collections: ['devices'],
  // op-dbus pcidecl: its items become devices
  adoptsFrom: ['pcidecl'],
  load: () => import('./index.js'),
};
export default manifest;
