/** packages as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest, SettingSpec } from '../../core/manifest.js';

export const PACKAGES_BACKEND: SettingSpec = {
  key: 'packagesBackend',
  flag: '--packages-backend <name>',
  env: 'OPD_PACKAGES_BACKEND',
  type: 'name',
  default: 'auto',
  help: 'package backend: auto, packagekit or apt',
};

export const SOURCE_CACHE: SettingSpec = {
  key: 'sourceCache',
  flag: '--source-cache <dir>',
  env: 'OPD_SOURCE_CACHE',
  type: 'path',
  default: '/var/cache/opd/sources',
  help: 'where the packages plugin keeps the .deb files it fetched (by sha256), so that each is fetched once',
};

export const TUNABLES = {
  /** A package transaction (PackageKit or apt). */
  packageTxMs: 600_000,
} as const;

/** An op-dbus packagekit section this plugin adopts: it has `packages` or `additional_packages` (else it is refused as a whole). */
const adoptsPackageKit = (body: unknown): boolean =>
  typeof body === 'object' &&
  body !== null &&
  !Array.isArray(body) &&
  ('packages' in body || 'additional_packages' in body);

const manifest: PluginManifest = {
  name: 'packages',
  collections: ['installed', 'repositories'],
  settings: [PACKAGES_BACKEND, SOURCE_CACHE],
  tunables: TUNABLES,
  adoptsFrom: ['packagekit'],
  opdbus: {
    topLevel: {
      packages:
        'op-dbus top-level `packages` (required/optional lists) is not a state section: list them under plugins.packages.installed',
    },
    sections: {
      packagekit: {
        hint: 'use plugins.packages.installed (op-dbus `packagekit.packages.<name>.ensure` is read as that)',
        adopted: adoptsPackageKit,
      },
      netmaker:
        'op-dbus netmaker (mesh enrollment with netclient) is not supported: install netclient with plugins.packages and join the mesh outside opd; put the mesh interface on an OVS bridge with plugins.ovs',
    },
  },
  load: () => import('./index.js'),
};
export default manifest;
