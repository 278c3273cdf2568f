/** lxc as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest, SettingSpec } from '../../core/manifest.js';
import { OVS_DB } from '../../host/settings.js';

export const LXC_PATH: SettingSpec = {
  key: 'lxcPath',
  flag: '--lxc-path <dir>',
  env: 'OPD_LXC_PATH',
  type: 'path',
  default: '/var/lib/lxc',
  help: 'LXC container path (lxc-* -P)',
};

/** lxc-stop's graceful halt (seconds) before it kills the container. */
export const LXC_STOP_TIMEOUT: SettingSpec = {
  key: 'lxcStopTimeout',
  flag: '--lxc-stop-timeout <seconds>',
  env: 'OPD_LXC_STOP_TIMEOUT',
  type: 'number',
  default: '30',
  help: 'seconds lxc-stop waits for a clean halt before it kills a container',
};

export const PVE_STORAGE_CFG: SettingSpec = {
  key: 'pveStorageCfg',
  env: 'OPD_PVE_STORAGE_CFG',
  type: 'path',
  default: '/etc/pve/storage.cfg',
  help: 'the Proxmox storage configuration the lxc plugin reads to find vztmpl archives',
};

export const TUNABLES = {
  /** Creating a container (lxc-create or unpacking a rootfs archive) and destroying one. */
  lxcCreateMs: 900_000,
  lxcDestroyMs: 300_000,
  lxcStartMs: 120_000,
  lxcKillMs: 60_000,
  /** The door's limit beyond lxc-stop's graceful halt (--lxc-stop-timeout). */
  lxcStopGraceMs: 30_000,
} as const;

const manifest: PluginManifest = {
  name: 'lxc',
  collections: ['containers'],
  // OVS_DB: LXC attaches a veth to an OVS bridge itself, against the database opd is pointed at
  settings: [LXC_PATH, LXC_STOP_TIMEOUT, PVE_STORAGE_CFG, OVS_DB],
  tunables: TUNABLES,
  opdbus: {
    topLevel: {
      containers: 'op-dbus top-level `containers` is not a state section: put containers under plugins.lxc.containers',
    },
  },
  load: () => import('./index.js'),
};
export default manifest;
