/** ovs as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';
import { OVS_DB } from '../../host/settings.js';
import { RULES } from './rules.js';

export const TUNABLES = {
  /** An OVSDB read and an OVSDB transaction (and vswitchd's handshake after it). */
  ovsdbReadMs: 10_000,
  ovsdbApplyMs: 30_000,
} as const;

const manifest: PluginManifest = {
  name: 'ovs',
  collections: ['bridges'],
  settings: [OVS_DB],
  tunables: TUNABLES,
  // op-dbus `net.interfaces` entries of type ovs-bridge / ovs-port / ovs-interface, and openflow's socket_ports
  adoptsFrom: ['net', 'openflow'],
  rules: RULES,
  load: () => import('./index.js'),
};
export default manifest;
