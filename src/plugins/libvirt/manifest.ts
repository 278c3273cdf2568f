/** libvirt as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest, SettingSpec } from '../../core/manifest.js';
import { RULES } from './rules.js';

export const LIBVIRT_URI: SettingSpec = {
  key: 'libvirtUri',
  flag: '--libvirt-uri <uri>',
  env: 'OPD_LIBVIRT_URI',
  type: 'url',
  default: 'qemu:///system',
  help: 'libvirt connection URI (virsh -c)',
};

export const TUNABLES = {
  /** A virsh command. */
  virshMs: 120_000,
  /** A domain's graceful shutdown when the document names no `shutdown_timeout`; `virsh event`'s limit beyond it. */
  libvirtShutdownS: 60,
  virshEventGraceMs: 15_000,
} as const;

const manifest: PluginManifest = {
  name: 'libvirt',
  collections: ['networks', 'pools', 'domains'],
  settings: [LIBVIRT_URI],
  tunables: TUNABLES,
  rules: RULES,
  load: () => import('./index.js'),
};
export default manifest;
