/** databases as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest, SettingSpec } from '../../core/manifest.js';
import { PG_PORT } from '../../host/settings.js';

export { PG_PORT };

export const PG_HOST: SettingSpec = {
  key: 'pgHost',
  flag: '--pg-host <dir>',
  env: 'OPD_PG_HOST',
  type: 'path',
  default: '/var/run/postgresql',
  help: 'PostgreSQL socket directory',
};

export const PG_USER: SettingSpec = {
  key: 'pgUser',
  flag: '--pg-user <role>',
  env: 'OPD_PG_USER',
  type: 'name',
  default: 'postgres',
  help: 'PostgreSQL superuser (and, as root, the system user psql runs as for peer auth)',
};

export const MYSQL_SOCKET: SettingSpec = {
  key: 'mysqlSocket',
  flag: '--mysql-socket <path>',
  env: 'OPD_MYSQL_SOCKET',
  type: 'path',
  default: '/run/mysqld/mysqld.sock',
  help: 'MariaDB/MySQL socket',
};

export const MYSQL_USER: SettingSpec = {
  key: 'mysqlUser',
  flag: '--mysql-user <user>',
  env: 'OPD_MYSQL_USER',
  type: 'name',
  default: 'root',
  help: 'MariaDB/MySQL administrative user (unix_socket auth as root)',
};

export const TUNABLES = {
  /** One psql/mysql script (reads), one apply script (each DROP DATABASE waits for a checkpoint), and the clients' connect timeout in seconds. */
  sqlMs: 60_000,
  sqlApplyMs: 540_000,
  sqlConnectS: 10,
} as const;

const manifest: PluginManifest = {
  name: 'databases',
  collections: ['pg_roles', 'pg_databases', 'mysql_users', 'mysql_databases'],
  settings: [PG_HOST, PG_PORT, PG_USER, MYSQL_SOCKET, MYSQL_USER],
  tunables: TUNABLES,
  load: () => import('./index.js'),
};
export default manifest;
