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
  {
    flag: '--ovs-db <url>',
    key: 'ovsDb',
    env: 'OPD_OVS_DB',
    help: 'OVSDB endpoint',
    default: 'unix:/run/openvswitch/db.sock',
  },
  {
    flag: '--pg-host <dir>',
    key: 'pgHost',
    env: 'OPD_PG_HOST',
    help: 'PostgreSQL socket directory',
    default: '/var/run/postgresql',
  },
  {
    flag: '--pg-port <port>',
    key: 'pgPort',
    env: 'OPD_PG_PORT',
    help: 'PostgreSQL port (names the socket file)',
    default: '5432',
  },
  {
    flag: '--pg-user <role>',
    key: 'pgUser',
    env: 'OPD_PG_USER',
    help: 'PostgreSQL superuser (and, as root, the system user psql runs as for peer auth)',
    default: 'postgres',
  },
  {
    flag: '--mysql-socket <path>',
    key: 'mysqlSocket',
    env: 'OPD_MYSQL_SOCKET',
    help: 'MariaDB/MySQL socket',
    default: '/run/mysqld/mysqld.sock',
  },
  {
    flag: '--mysql-user <user>',
    key: 'mysqlUser',
    env: 'OPD_MYSQL_USER',
    help: 'MariaDB/MySQL administrative user (unix_socket auth as root)',
    default: 'root',
  },
  {
    flag: '--lxc-path <dir>',
    key: 'lxcPath',
    env: 'OPD_LXC_PATH',
    help: 'LXC container path (lxc-* -P)',
    default: '/var/lib/lxc',
  },
  {
    flag: '--lxc-stop-timeout <seconds>',
    key: 'lxcStopTimeout',
    env: 'OPD_LXC_STOP_TIMEOUT',
    help: 'seconds lxc-stop waits for a clean halt before it kills a container',
    default: '30',
  },
  {
    flag: '--netns <name>',
    key: 'netns',
    env: 'OPD_NETNS',
    help: 'network namespace for the net and firewall plugins (ip -n NAME / ip netns exec NAME nft)',
  },
  {
    flag: '--packages-backend <name>',
    key: 'packagesBackend',
    env: 'OPD_PACKAGES_BACKEND',
    help: 'package backend: auto, packagekit or apt',
    default: 'auto',
  },
  {
    flag: '--source-cache <dir>',
    key: 'sourceCache',
    env: 'OPD_SOURCE_CACHE',
    help: 'where the packages plugin keeps the .deb files it fetched (by sha256), so that each is fetched once',
    default: '/var/cache/opd/sources',
  },
  {
    flag: '--systemd-unit-dir <dir>',
    key: 'systemdUnitDir',
    env: 'OPD_SYSTEMD_UNIT_DIR',
    help: 'where the systemd plugin writes unit files and drop-ins',
    default: '/etc/systemd/system',
  },
  {
    flag: '--root <dir>',
    key: 'root',
    env: 'OPD_ROOT',
    help: 'apply file-like plugins (files; kmod, sysctl persistence files; users and groups via --prefix; dns; pci sysfs) under this directory',
  },
  {
    flag: '--libvirt-uri <uri>',
    key: 'libvirtUri',
    env: 'OPD_LIBVIRT_URI',
    help: 'libvirt connection URI (virsh -c)',
    default: 'qemu:///system',
  },
];

export const AUDIT_LOG_DEFAULT = '/var/lib/opd/audit.jsonl';
export const AUDIT_KEY_DEFAULT = '/etc/opd/audit.key';
