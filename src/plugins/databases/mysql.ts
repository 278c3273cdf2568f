/** MariaDB/MySQL: one mysql process reads every named user and database (as JSON); apply renders SQL. */
import type { Obj } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { mysql, queryJson, type EngineRead } from './client.js';
import {
  myAccount,
  myGrantDb,
  myIdent,
  myLit,
  mysqlNativeHash,
  mysqlPasswordMatches,
  myUngrantDb,
  parseGrantee,
  storedSecret,
} from './sql.js';
import { myCanonical, type Step } from './plan.js';
import { isObj } from '../../core/diff.js';

export interface MyRaw {
  /** how many privileges GRANT ALL gives on a database on this server (mysql.db's *_priv columns but Grant_priv) */
  all_count: number;
  me: string;
  databases: { name: string; character_set: string; collation: string }[] | null;
  users: { user: string; host: string; plugin: string | null; secret: string | null }[] | null;
  privileges: { grantee: string; db: string; privilege: string }[] | null;
}

/** Accounts that come with the server (never pruned, not shown). */
export const SYSTEM_ACCOUNTS = new Set([
  'root@localhost',
  'mariadb.sys@localhost',
  'mysql@localhost',
  'mysql.sys@localhost',
  'mysql.session@localhost',
  'mysql.infoschema@localhost',
  'debian-sys-maint@localhost',
]);
const SYSTEM_DBS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

const inList = (expr: string, names: string[]) =>
  names.length ? `${expr} IN (${names.map(myLit).join(',')})` : 'FALSE';

export function myReadSql(users: string[], dbs: string[], allUsers: boolean, allDbs: boolean): string {
  return `SELECT JSON_OBJECT(
  'all_count', (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'db'
      AND RIGHT(COLUMN_NAME, 5) = '_priv' AND COLUMN_NAME <> 'Grant_priv'),
  'me', CURRENT_USER(),
  'databases', (SELECT JSON_ARRAYAGG(JSON_OBJECT('name', SCHEMA_NAME, 'character_set', DEFAULT_CHARACTER_SET_NAME,
      'collation', DEFAULT_COLLATION_NAME)) FROM information_schema.SCHEMATA
    WHERE (${inList('SCHEMA_NAME', dbs)} OR ${allDbs ? 'TRUE' : 'FALSE'}) AND SCHEMA_NAME NOT IN (${SYSTEM_DBS.map(myLit).join(',')})),
  'users', (SELECT JSON_ARRAYAGG(JSON_OBJECT('user', User, 'host', Host, 'plugin', plugin, 'secret', authentication_string))
    FROM mysql.user WHERE Host <> '' AND (${inList("CONCAT(User, '@', Host)", users)} OR ${allUsers ? 'TRUE' : 'FALSE'})),
  'privileges', (SELECT JSON_ARRAYAGG(JSON_OBJECT('grantee', GRANTEE, 'db', TABLE_SCHEMA, 'privilege', PRIVILEGE_TYPE))
    FROM information_schema.SCHEMA_PRIVILEGES)
);\n`;
}

/** The MariaDB/MySQL read: one query for every user and every database the document names. */
export const myRead: EngineRead = async (settings, desired, [users, dbs], [allUsers, allDbs]) => {
  const sql = myReadSql(users, dbs, allUsers, allDbs);
  return myToSection(
    await queryJson<MyRaw>(mysql, settings, sql, 'MariaDB/MySQL: reading users and databases'),
    desired,
  );
};

/** The section as the host has it (passwords: the desired value when the stored hash matches, else absent). */
function myToSection(
  raw: MyRaw,
  desired: Obj,
): { mysql_users: Record<string, Obj>; mysql_databases: Record<string, Obj> } {
  const wantUsers = isObj(desired.mysql_users) ? desired.mysql_users : {};
  const wantDbs = isObj(desired.mysql_databases) ? desired.mysql_databases : {};
  const mysql_users: Record<string, Obj> = {};
  for (const u of raw.users ?? []) {
    const account = `${u.user}@${u.host}`;
    const system = SYSTEM_ACCOUNTS.has(account) || account === raw.me;
    if (system && !(account in wantUsers)) continue;
    const o: Obj = {};
    const w = wantUsers[account];
    if (isObj(w) && typeof w.password === 'string' && mysqlPasswordMatches(u.plugin, u.secret, w.password))
      o.password = w.password;
    mysql_users[account] = o;
  }
  // db → account → privileges
  const privs = new Map<string, Map<string, Set<string>>>();
  for (const p of raw.privileges ?? []) {
    const account = parseGrantee(p.grantee);
    if (!account) continue;
    const db = myUngrantDb(p.db);
    const m = privs.get(db) ?? new Map<string, Set<string>>();
    const s = m.get(account) ?? new Set<string>();
    s.add(p.privilege.toUpperCase());
    m.set(account, s);
    privs.set(db, m);
  }
  const mysql_databases: Record<string, Obj> = {};
  for (const d of raw.databases ?? []) {
    const grants: Obj = {};
    const m = privs.get(d.name) ?? new Map<string, Set<string>>();
    for (const [account, s] of [...m].sort(([a], [b]) => (a < b ? -1 : 1)))
      grants[account] = s.size >= raw.all_count ? ['ALL'] : myCanonical([...s]);
    const w = wantDbs[d.name];
    if (isObj(w) && isObj(w.grants)) for (const a of Object.keys(w.grants)) if (!(a in grants)) grants[a] = [];
    mysql_databases[d.name] = { character_set: d.character_set, collation: d.collation, grants };
  }
  return { mysql_users, mysql_databases };
}

const PRIV = /^[A-Z]+( [A-Z]+)*$/;

function privList(list: string[]): string {
  for (const p of list) if (!PRIV.test(p)) throw new OpdError('bug', `not a MariaDB privilege: ${JSON.stringify(p)}`);
  return list.map((p) => (p === 'ALL' ? 'ALL PRIVILEGES' : p)).join(', ');
}

const NAME = /^[a-z0-9_]+$/;

function charset(cs?: string, co?: string): string {
  for (const v of [cs, co])
    if (v !== undefined && !NAME.test(v))
      throw new OpdError('bug', `not a character set or collation name: ${JSON.stringify(v)}`);
  return `${cs ? ` CHARACTER SET ${cs}` : ''}${co ? ` COLLATE ${co}` : ''}`;
}

export function myStepSql(step: Step, secrets: string[]): string[] {
  switch (step.kind) {
    case 'my.user.create':
    case 'my.user.password': {
      const auth =
        step.password === undefined
          ? ''
          : ` IDENTIFIED WITH mysql_native_password AS ${myLit(storedSecret(step.password, mysqlNativeHash, secrets))}`;
      return [`${step.kind === 'my.user.create' ? 'CREATE' : 'ALTER'} USER ${myAccount(step.account)}${auth};`];
    }
    case 'my.user.drop':
      return [`DROP USER IF EXISTS ${myAccount(step.account)};`];
    case 'my.db.create':
      return [`CREATE DATABASE ${myIdent(step.name)}${charset(step.character_set, step.collation)};`];
    case 'my.db.alter':
      return [`ALTER DATABASE ${myIdent(step.name)}${charset(step.character_set, step.collation)};`];
    case 'my.db.drop':
      return [`DROP DATABASE IF EXISTS ${myIdent(step.name)};`];
    case 'my.db.grant': {
      const on = `ON ${myGrantDb(step.name)}.*`;
      const who = myAccount(step.account);
      const out: string[] = [];
      if (step.revokeAll) out.push(`REVOKE ALL PRIVILEGES ${on} FROM ${who};`);
      if (step.revoke.length) out.push(`REVOKE ${privList(step.revoke)} ${on} FROM ${who};`);
      if (step.grant.length) out.push(`GRANT ${privList(step.grant)} ${on} TO ${who};`);
      return out;
    }
    default:
      throw new OpdError('bug', `not a MariaDB step: ${(step as Step).kind}`);
  }
}
