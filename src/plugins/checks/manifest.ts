/** checks as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';
import { PG_PORT } from '../../host/settings.js';

export const TUNABLES = {
  /** A command check's command (checks.commands) when it names no `timeout:`, in seconds. */
  checkCommandS: 60,
} as const;

const manifest: PluginManifest = {
  name: 'checks',
  collections: ['require', 'recommend', 'commands'],
  // PG_PORT: a busy port is the document's own PostgreSQL server when it is the databases section's
  settings: [PG_PORT],
  tunables: TUNABLES,
  load: () => import('./index.js'),
};
export default manifest;
