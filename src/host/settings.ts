/**
 * Settings several plugins read, each declared once (a plugin never imports another, and two
 * specs of one key would be two defaults): every manifest that reads one lists it, and the
 * registry derives its flag and environment variable once (src/core/manifest.ts, settingsOf).
 */
import type { SettingSpec } from '../core/manifest.js';

/** The OVSDB endpoint (ovs; openflow's ovs-ofctl; lxc's veths on OVS bridges). */
export const OVS_DB: SettingSpec = {
  key: 'ovsDb',
  flag: '--ovs-db <url>',
  env: 'OPD_OVS_DB',
  type: 'url',
  default: 'unix:/run/openvswitch/db.sock',
  help: 'OVSDB endpoint',
};

/** The network namespace opd works in (net: ip -n NAME; firewall: ip netns exec NAME nft). */
export const NETNS: SettingSpec = {
  key: 'netns',
  flag: '--netns <name>',
  env: 'OPD_NETNS',
  type: 'name',
  help: 'network namespace for the net and firewall plugins (ip -n NAME / ip netns exec NAME nft)',
  audited: true,
};

/** PostgreSQL's port (databases; checks: whether a busy port is the document's own server). */
export const PG_PORT: SettingSpec = {
  key: 'pgPort',
  flag: '--pg-port <port>',
  env: 'OPD_PG_PORT',
  type: 'number',
  default: '5432',
  help: 'PostgreSQL port (names the socket file)',
};
