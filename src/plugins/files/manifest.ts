/** files as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';

const manifest: PluginManifest = {
  name: 'files',
  collections: ['paths'],
  opdbus: {
    topLevel: {
      bootstrap:
        'op-dbus `bootstrap` (hostname, domain, timezone, debian_version) is not supported: manage /etc/hostname and /etc/timezone with the files plugin',
      system:
        'op-dbus `system` (hostname, timezone, locale) is not supported: manage /etc/hostname, /etc/timezone and /etc/default/locale with the files plugin',
    },
    sections: {
      keyring:
        'op-dbus keyring (secret-service entries) is not supported: keep secrets in files managed by plugins.files (mode 0600) or in the secrets store opd reads',
      file: 'op-dbus `file` is spelled `files` in opd: plugins.files.paths.<path>',
    },
  },
  load: () => import('./index.js'),
};
export default manifest;
