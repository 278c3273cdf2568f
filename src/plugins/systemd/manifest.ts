/** systemd as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest, SettingSpec } from '../../core/manifest.js';
import { rules } from './rules.js';

export const UNIT_DIR: SettingSpec = {
  key: 'systemdUnitDir',
  flag: '--systemd-unit-dir <dir>',
  env: 'OPD_SYSTEMD_UNIT_DIR',
  type: 'path',
  default: '/etc/systemd/system',
  help: 'where the systemd plugin writes unit files and drop-ins',
};

export const TUNABLES = {
  /** A systemd job (start, stop, restart), from queueing to JobRemoved. */
  systemdJobMs: 180_000,
  /** systemd's Reload (daemon-reload: it re-reads every unit file). */
  systemdReloadMs: 120_000,
} as const;

const manifest: PluginManifest = {
  name: 'systemd',
  collections: ['units'],
  settings: [UNIT_DIR],
  tunables: TUNABLES,
  rules: rules(UNIT_DIR),
  opdbus: {
    keys: {
      services:
        'write systemd.units with full unit names: {"units": {"pveproxy.service": {"enabled": true, "active_state": "active"}}}',
    },
  },
  load: () => import('./index.js'),
};
export default manifest;
