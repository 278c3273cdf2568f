/**
 * Endpoints and paths every command accepts, each with its environment variable. Plugins
 * read them from Settings; add a row here when a plugin needs a new endpoint.
 */
export interface SettingOption {
  flag: string;
  key: string;
  env: string;
  help: string;
  default?: string;
}

export const SETTING_OPTIONS: SettingOption[] = [
  { flag: '--ovs-db <url>', key: 'ovsDb', env: 'OPD_OVS_DB', help: 'OVSDB endpoint', default: 'unix:/run/openvswitch/db.sock' },
  { flag: '--lxc-path <dir>', key: 'lxcPath', env: 'OPD_LXC_PATH', help: 'LXC container path (lxc-* -P)', default: '/var/lib/lxc' },
  { flag: '--lxc-stop-timeout <seconds>', key: 'lxcStopTimeout', env: 'OPD_LXC_STOP_TIMEOUT', help: 'seconds lxc-stop waits for a clean halt before it kills a container', default: '30' },
];

export const AUDIT_LOG_DEFAULT = '/var/lib/opd/audit.jsonl';
export const AUDIT_KEY_DEFAULT = '/etc/opd/audit.key';
