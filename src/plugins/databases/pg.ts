/** PostgreSQL: one psql process reads every named role and database (as JSON); apply renders SQL. */
import type { Obj } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { psql, queryJson, type EngineRead } from './client.js';
import { pgIdent, pgLit, pgPasswordMatches, scramVerifier, storedSecret } from './sql.js';
import { pgCanonical, type Step } from './plan.js';
import { isObj } from '../../core/diff.js';

export interface PgRaw {
  roles: {
    name: string;
    login: boolean;
    superuser: boolean;
    createdb: boolean;
    createrole: boolean;
    secret: string | null;
    system: boolean;
  }[];
  databases: {
    name: string;
    owner: string;
    encoding: string;
    system: boolean;
    acl: { grantee: string; privilege: string }[];
  }[];
}

const arr = (names: string[]) => `ARRAY[${names.map(pgLit).join(',')}]::text[]`;

/** One query: every role and database named (or all of them), with ACLs and password verifiers. */
export function pgReadSql(roles: string[], dbs: string[], allRoles: boolean, allDbs: boolean): string {
  return `SELECT json_build_object(
  'roles', (SELECT coalesce(json_agg(json_build_object('name', r.rolname, 'login', r.rolcanlogin, 'superuser', r.rolsuper,
      'createdb', r.rolcreatedb, 'createrole', r.rolcreaterole, 'secret', r.rolpassword,
      'system', r.oid < 16384 OR r.rolname = current_user) ORDER BY r.rolname), '[]'::json)
    FROM pg_authid r WHERE r.rolname = ANY(${arr(roles)}) OR ${allRoles ? 'true' : 'false'}),
  'databases', (SELECT coalesce(json_agg(json_build_object('name', d.datname, 'owner', pg_get_userbyid(d.datdba),
      'encoding', pg_encoding_to_char(d.encoding), 'system', d.datname IN ('postgres', 'template0', 'template1'),
      'acl', (SELECT coalesce(json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END,
          'privilege', a.privilege_type)), '[]'::json)
        FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a)) ORDER BY d.datname), '[]'::json)
    FROM pg_database d WHERE d.datname = ANY(${arr(dbs)}) OR ${allDbs ? 'true' : 'false'})
);\n`;
}

/** The PostgreSQL read: one query for every role and every database the document names. */
export const pgRead: EngineRead = async (settings, desired, [roles, dbs], [allRoles, allDbs]) => {
  const sql = pgReadSql(roles, dbs, allRoles, allDbs);
  return pgToSection(await queryJson<PgRaw>(psql, settings, sql, 'PostgreSQL: reading roles and databases'), desired);
};

/**
 * The section as the host has it. Passwords: `password` is set to the desired value only when the
 * stored verifier matches it (so a matching password is no diff and a differing one is, without
 * either value ever being revealed); otherwise it is absent.
 */
function pgToSection(raw: PgRaw, desired: Obj): { pg_roles: Record<string, Obj>; pg_databases: Record<string, Obj> } {
  const wantRoles = isObj(desired.pg_roles) ? desired.pg_roles : {};
  const wantDbs = isObj(desired.pg_databases) ? desired.pg_databases : {};
  const pg_roles: Record<string, Obj> = {};
  for (const r of raw.roles) {
    if (r.system && !(r.name in wantRoles)) continue;
    const o: Obj = { login: r.login, superuser: r.superuser, createdb: r.createdb, createrole: r.createrole };
    const w = wantRoles[r.name];
    if (isObj(w) && typeof w.password === 'string' && pgPasswordMatches(r.secret, r.name, w.password))
      o.password = w.password;
    pg_roles[r.name] = o;
  }
  const pg_databases: Record<string, Obj> = {};
  for (const d of raw.databases) {
    if (d.system && !(d.name in wantDbs)) continue;
    const byRole = new Map<string, string[]>();
    for (const a of d.acl) {
      if (!a.grantee) continue; // PUBLIC
      byRole.set(a.grantee, [...(byRole.get(a.grantee) ?? []), a.privilege]);
    }
    const grants: Obj = {};
    for (const [role, privs] of [...byRole].sort(([a], [b]) => (a < b ? -1 : 1))) grants[role] = pgCanonical(privs);
    const w = wantDbs[d.name];
    if (isObj(w) && isObj(w.grants)) for (const role of Object.keys(w.grants)) if (!(role in grants)) grants[role] = [];
    pg_databases[d.name] = { owner: d.owner, encoding: d.encoding, grants };
  }
  return { pg_roles, pg_databases };
}

const PRIV = /^[A-Z]+$/;

function privList(list: string[]): string {
  for (const p of list)
    if (!PRIV.test(p)) throw new OpdError('bug', `not a PostgreSQL privilege: ${JSON.stringify(p)}`);
  return list.join(', ');
}

const ATTR_SQL: Record<string, [string, string]> = {
  login: ['LOGIN', 'NOLOGIN'],
  superuser: ['SUPERUSER', 'NOSUPERUSER'],
  createdb: ['CREATEDB', 'NOCREATEDB'],
  createrole: ['CREATEROLE', 'NOCREATEROLE'],
};

function attrs(a: Record<string, boolean>): string {
  return Object.keys(ATTR_SQL)
    .filter((k) => typeof a[k] === 'boolean')
    .map((k) => ATTR_SQL[k][a[k] ? 0 : 1])
    .join(' ');
}

/** SQL for one step; the secrets list gets every string a message must never show. */
export function pgStepSql(step: Step, secrets: string[]): string[] {
  switch (step.kind) {
    case 'pg.role.create':
    case 'pg.role.alter': {
      const pw =
        step.password === undefined
          ? ''
          : ` PASSWORD ${pgLit(storedSecret(step.password, (p) => scramVerifier(p), secrets))}`;
      const verb = step.kind === 'pg.role.create' ? 'CREATE' : 'ALTER';
      const a = attrs(step.attrs);
      if (verb === 'ALTER' && !a && !pw) return [];
      return [`${verb} ROLE ${pgIdent(step.name)}${a || pw ? ' WITH' : ''}${a ? ' ' + a : ''}${pw};`];
    }
    case 'pg.role.drop':
      return [`DROP ROLE IF EXISTS ${pgIdent(step.name)};`];
    case 'pg.db.create':
      return [
        `CREATE DATABASE ${pgIdent(step.name)}${step.owner ? ` OWNER ${pgIdent(step.owner)}` : ''}${step.encoding ? ` ENCODING ${pgLit(step.encoding)} TEMPLATE template0` : ''};`,
      ];
    case 'pg.db.owner':
      return [`ALTER DATABASE ${pgIdent(step.name)} OWNER TO ${pgIdent(step.owner)};`];
    case 'pg.db.drop':
      return [`DROP DATABASE IF EXISTS ${pgIdent(step.name)};`];
    case 'pg.db.grant': {
      const out: string[] = [];
      if (step.revoke.length)
        out.push(`REVOKE ${privList(step.revoke)} ON DATABASE ${pgIdent(step.name)} FROM ${pgIdent(step.role)};`);
      if (step.grant.length)
        out.push(`GRANT ${privList(step.grant)} ON DATABASE ${pgIdent(step.name)} TO ${pgIdent(step.role)};`);
      return out;
    }
    default:
      throw new OpdError('bug', `not a PostgreSQL step: ${(step as Step).kind}`);
  }
}
