/** dns as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';

const manifest: PluginManifest = {
  name: 'dns',
  collections: ['resolvers'],
  // op-dbus dnsresolver: its items become resolvers
  adoptsFrom: ['dnsresolver'],
  load: () => import('./index.js'),
};
export default manifest;
