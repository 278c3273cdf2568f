/**
 * The registry's list: one line per plugin, its manifest (src/core/manifest.ts). This is the one
 * place that names every plugin; everything else (src/plugins/index.ts, the flags, the tunables,
 * adoption, the semantic rules, the op-dbus forms) is derived from it. `npm run new-plugin NAME`
 * adds a line here.
 */
export { default as checks } from './checks/manifest.js';
export { default as databases } from './databases/manifest.js';
export { default as dns } from './dns/manifest.js';
export { default as exec } from './exec/manifest.js';
export { default as files } from './files/manifest.js';
export { default as firewall } from './firewall/manifest.js';
export { default as groups } from './groups/manifest.js';
export { default as kmod } from './kmod/manifest.js';
export { default as libvirt } from './libvirt/manifest.js';
export { default as lxc } from './lxc/manifest.js';
export { default as net } from './net/manifest.js';
export { default as openflow } from './openflow/manifest.js';
export { default as ovs } from './ovs/manifest.js';
export { default as packages } from './packages/manifest.js';
export { default as pci } from './pci/manifest.js';
export { default as sysctl } from './sysctl/manifest.js';
export { default as systemd } from './systemd/manifest.js';
export { default as users } from './users/manifest.js';
