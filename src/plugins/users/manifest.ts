/** users as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';

const manifest: PluginManifest = {
  name: 'users',
  collections: ['users'],
  opdbus: {
    sections: {
      sessdecl:
        'op-dbus sessdecl (declared login sessions) is not supported: sessions are made by logging in; manage users with plugins.users',
    },
    keys: {
      accounts: 'write users.users: {"users": {"admin": {"uid": 1000, "groups": ["sudo"], "shell": "/bin/bash"}}}',
    },
  },
  load: () => import('./index.js'),
};
export default manifest;
