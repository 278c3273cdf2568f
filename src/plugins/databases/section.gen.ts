/* Generated from schema/databases.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

/**
 * absent removes the resource.
 */
export type CommonState = 'present' | 'absent';
export type CommonAddress = string;
/**
 * Resources that must be converged before this one.
 */
export type CommonDependsOn = CommonAddress[];
/**
 * Allow data-destroying operations on this resource.
 */
export type CommonAllowDestroy = boolean;
export type PgPrivileges = ('ALL' | 'CONNECT' | 'CREATE' | 'TEMPORARY')[];
export type MysqlPrivileges = (
  | 'ALL'
  | 'SELECT'
  | 'INSERT'
  | 'UPDATE'
  | 'DELETE'
  | 'CREATE'
  | 'DROP'
  | 'REFERENCES'
  | 'INDEX'
  | 'ALTER'
  | 'CREATE TEMPORARY TABLES'
  | 'LOCK TABLES'
  | 'EXECUTE'
  | 'CREATE VIEW'
  | 'SHOW VIEW'
  | 'CREATE ROUTINE'
  | 'ALTER ROUTINE'
  | 'EVENT'
  | 'TRIGGER'
  | 'DELETE HISTORY'
  | 'SHOW CREATE ROUTINE'
)[];

/**
 * Talks to the local servers over their sockets as the superuser (psql as postgres, mysql as root). Passwords never leave opd in clear: the servers receive a SCRAM-SHA-256 verifier or a mysql_native_password hash.
 */
export interface DatabasesDoc {
  /**
   * collection: true removes the members the document does not name (never system databases, the superuser or built-in accounts); removal needs allow_destroy.
   */
  prune?: {
    pg_roles?: boolean;
    pg_databases?: boolean;
    mysql_users?: boolean;
    mysql_databases?: boolean;
  };
  pg_roles?: {
    [k: string]: PgRole;
  };
  pg_databases?: {
    [k: string]: PgDatabase;
  };
  mysql_users?: {
    [k: string]: MysqlUser;
  };
  mysql_databases?: {
    [k: string]: MysqlDatabase;
  };
}
export interface PgRole {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * Secret: stored as a SCRAM-SHA-256 verifier computed by opd; compared by recomputing with the stored salt.
   */
  password?: string;
  /**
   * LOGIN (default true when opd creates the role).
   */
  login?: boolean;
  superuser?: boolean;
  createdb?: boolean;
  createrole?: boolean;
}
export interface PgDatabase {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  owner?: string;
  encoding?: string;
  /**
   * role → privileges on this database. Roles not named keep what they have; [] revokes all.
   */
  grants?: {
    [k: string]: PgPrivileges;
  };
}
export interface MysqlUser {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * Secret: stored as a mysql_native_password hash computed by opd; compared with the stored hash.
   */
  password?: string;
}
export interface MysqlDatabase {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  character_set?: string;
  collation?: string;
  /**
   * user@host → privileges on this database (GRANT … ON db.*). Accounts not named keep what they have; [] revokes all.
   */
  grants?: {
    [k: string]: MysqlPrivileges;
  };
}
