/**
 * Pure planning for the databases plugin: a resource diff becomes steps (no SQL yet: apply
 * renders the SQL and computes password verifiers with a fresh salt). Summaries never contain
 * a password: they say "password set" / "password changed".
 */
import { resourceChange, type Change, type Edge, type Obj, type ResourceDiff } from '../../core/plugin.js';
import type { MysqlUser, PgRole } from './section.gen.js';
import { isObj } from '../../core/diff.js';

export const PG_ALL = ['CONNECT', 'CREATE', 'TEMPORARY'] as const;

export type Step =
  | { kind: 'pg.role.create'; name: string; attrs: Record<string, boolean>; password?: string }
  | { kind: 'pg.role.alter'; name: string; attrs: Record<string, boolean>; password?: string }
  | { kind: 'pg.role.drop'; name: string }
  | { kind: 'pg.db.create'; name: string; owner?: string; encoding?: string }
  | { kind: 'pg.db.owner'; name: string; owner: string }
  | { kind: 'pg.db.drop'; name: string }
  | { kind: 'pg.db.grant'; name: string; role: string; grant: string[]; revoke: string[] }
  | { kind: 'my.user.create'; account: string; password?: string }
  | { kind: 'my.user.password'; account: string; password: string }
  | { kind: 'my.user.drop'; account: string }
  | { kind: 'my.db.create'; name: string; character_set?: string; collation?: string }
  | { kind: 'my.db.alter'; name: string; character_set?: string; collation?: string }
  | { kind: 'my.db.drop'; name: string }
  | { kind: 'my.db.grant'; name: string; account: string; revokeAll: boolean; grant: string[]; revoke: string[] };

export interface DbChangeData {
  engine: 'pg' | 'mysql';
  steps: Step[];
}

export const PG_COLLECTIONS = ['pg_roles', 'pg_databases'] as const;
export const MY_COLLECTIONS = ['mysql_users', 'mysql_databases'] as const;
export const COLLECTIONS = [...PG_COLLECTIONS, ...MY_COLLECTIONS] as const;

const ROLE_ATTRS = ['login', 'superuser', 'createdb', 'createrole'] as const;

// ---------------------------------------------------------------------------------------------
// privilege lists: canonical form (upper case, sorted, ALL when complete)

function cleanPriv(p: string): string {
  const u = p.trim().toUpperCase().replace(/\s+/g, ' ');
  if (u === 'ALL PRIVILEGES') return 'ALL';
  if (u === 'TEMP') return 'TEMPORARY';
  return u;
}

/** PostgreSQL database privileges in canonical form: ['ALL'] or a sorted subset. */
export function pgCanonical(list: unknown): unknown {
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) return list;
  const set = new Set((list as string[]).map(cleanPriv));
  if (set.has('ALL') || PG_ALL.every((p) => set.has(p))) {
    // keep unknown words so that validation names them
    const rest = [...set].filter((p) => p !== 'ALL' && !(PG_ALL as readonly string[]).includes(p));
    return ['ALL', ...rest.sort()];
  }
  return [...set].sort();
}

/** MariaDB/MySQL database privileges in canonical form: ['ALL'] or a sorted list. */
export function myCanonical(list: unknown): unknown {
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) return list;
  const set = new Set((list as string[]).map(cleanPriv));
  if (set.has('ALL')) return ['ALL'];
  return [...set].sort();
}

function pgExpand(list: string[]): Set<string> {
  return new Set(list.flatMap((p) => (p === 'ALL' ? [...PG_ALL] : [p])));
}

function words(list: string[], full: readonly string[] = PG_ALL): string {
  if (full.length && full.every((p) => list.includes(p))) return 'ALL';
  return list.join(', ');
}

// ---------------------------------------------------------------------------------------------

const passwordChanged = (diff: ResourceDiff) =>
  typeof diff.desired?.password === 'string' &&
  diff.ops.some((o) => o.path === '/password' && (o.op === 'add' || o.op === 'replace'));

function opsFor(diff: ResourceDiff, prefix: string): ResourceDiff['ops'] {
  return diff.ops.filter((o) => o.path === prefix || o.path.startsWith(prefix + '/'));
}

function opsExcept(diff: ResourceDiff, prefix: string): ResourceDiff['ops'] {
  return diff.ops.filter((o) => !(o.path === prefix || o.path.startsWith(prefix + '/')));
}

/** A change of the diff's resource made of these steps of one engine. */
const stepsChange = (
  diff: ResourceDiff,
  engine: DbChangeData['engine'],
  action: string,
  summary: string,
  steps: Step[],
) => resourceChange<DbChangeData>(diff, action, summary, { engine, steps });

/** Dropping a role, user or database destroys data: refused unless allowed. */
const dropChange = (diff: ResourceDiff, engine: DbChangeData['engine'], summary: string, step: Step) => ({
  ...stepsChange(diff, engine, 'delete', summary, [step]),
  destructive: true,
});

function planPgRole(diff: ResourceDiff): Change<DbChangeData>[] {
  if (diff.action === 'delete') return [dropChange(diff, 'pg', 'role', { kind: 'pg.role.drop', name: diff.name })];
  const want = diff.desired as PgRole;
  if (diff.action === 'create') {
    const attrs: Record<string, boolean> = { login: true };
    for (const k of ROLE_ATTRS) if (typeof want[k] === 'boolean') attrs[k] = want[k];
    const bits = [attrs.login ? 'login' : 'nologin', ...ROLE_ATTRS.filter((k) => k !== 'login' && attrs[k])];
    const password = want.password;
    if (password) bits.push('password set');
    const step: Step = { kind: 'pg.role.create', name: diff.name, attrs, ...(password ? { password } : {}) };
    return [stepsChange(diff, 'pg', 'create', `role (${bits.join(', ')})`, [step])];
  }
  const cur = (diff.current ?? {}) as PgRole;
  const attrs: Record<string, boolean> = {};
  const text: string[] = [];
  for (const k of ROLE_ATTRS) {
    const w = want[k];
    if (typeof w === 'boolean' && w !== cur[k]) {
      attrs[k] = w;
      text.push(`${k} ${String(cur[k] ?? '(unset)')} → ${String(w)}`);
    }
  }
  const pw = passwordChanged(diff) ? want.password : undefined;
  if (pw) text.push('password changed');
  if (!text.length) return [];
  const step: Step = { kind: 'pg.role.alter', name: diff.name, attrs, ...(pw ? { password: pw } : {}) };
  return [stepsChange(diff, 'pg', 'update', text.join(', '), [step])];
}

function planMyUser(diff: ResourceDiff): Change<DbChangeData>[] {
  const account = diff.name;
  if (diff.action === 'delete')
    return [dropChange(diff, 'mysql', 'user and its grants', { kind: 'my.user.drop', account })];
  const { password } = diff.desired as MysqlUser;
  if (diff.action === 'create') {
    const step: Step = { kind: 'my.user.create', account, ...(password ? { password } : {}) };
    return [stepsChange(diff, 'mysql', 'create', password ? 'user (password set)' : 'user (no password)', [step])];
  }
  if (password && passwordChanged(diff))
    return [
      stepsChange(diff, 'mysql', 'update', 'password changed', [{ kind: 'my.user.password', account, password }]),
    ];
  return [];
}

/** What differs between the engines' databases; the planning itself is one (planDatabase). */
interface DbDialect {
  engine: DbChangeData['engine'];
  /** the creation fields, with the words a summary gives them */
  fields: readonly (readonly [key: string, words: string])[];
  create(name: string, fields: Record<string, string>): Step;
  drop(name: string): Step;
  /** the field whose change drops the database (all data) and creates it again (PostgreSQL: encoding) */
  recreateOn?: string;
  /** the step that changes the other fields in place */
  alter(name: string, changed: Record<string, string>): Step;
  /** privilege lists in canonical form */
  canonical(list: unknown): unknown;
  /** the step that turns a grantee's privileges `cur` into `want`, with its summary; none when they are the same */
  grant(name: string, who: string, want: string[], cur: string[]): { step: Step; summary: string } | undefined;
}

const PG_DB: DbDialect = {
  engine: 'pg',
  fields: [
    ['owner', 'owner'],
    ['encoding', 'encoding'],
  ],
  create: (name, { owner, encoding }) => ({
    kind: 'pg.db.create',
    name,
    ...(owner ? { owner } : {}),
    ...(encoding ? { encoding } : {}),
  }),
  drop: (name) => ({ kind: 'pg.db.drop', name }),
  recreateOn: 'encoding',
  alter: (name, { owner }) => ({ kind: 'pg.db.owner', name, owner }),
  canonical: pgCanonical,
  grant(name, role, want, cur) {
    const ws = pgExpand(want),
      cs = pgExpand(cur);
    const grant = [...ws].filter((p) => !cs.has(p)).sort();
    const revoke = [...cs].filter((p) => !ws.has(p)).sort();
    if (!grant.length && !revoke.length) return undefined;
    const summary = [grant.length ? `grant ${words(grant)}` : '', revoke.length ? `revoke ${words(revoke)}` : '']
      .filter(Boolean)
      .join('; ');
    return { step: { kind: 'pg.db.grant', name, role, grant, revoke }, summary };
  },
};

const MY_DB: DbDialect = {
  engine: 'mysql',
  fields: [
    ['character_set', 'character set'],
    ['collation', 'collation'],
  ],
  create: (name, fields) => ({ kind: 'my.db.create', name, ...fields }),
  drop: (name) => ({ kind: 'my.db.drop', name }),
  alter: (name, changed) => ({ kind: 'my.db.alter', name, ...changed }),
  canonical: myCanonical,
  grant(name, account, want, cur) {
    const wAll = want.includes('ALL'),
      cAll = cur.includes('ALL');
    let revokeAll = false;
    let grant: string[] = [];
    let revoke: string[] = [];
    if (wAll) {
      if (!cAll) grant = ['ALL'];
    } else if (cAll) {
      revokeAll = true;
      grant = [...want];
    } else {
      grant = want.filter((p) => !cur.includes(p));
      revoke = cur.filter((p) => !want.includes(p));
    }
    if (!revokeAll && !grant.length && !revoke.length) return undefined;
    const summary = [
      revokeAll ? 'revoke ALL' : '',
      revoke.length ? `revoke ${revoke.join(', ')}` : '',
      grant.length ? `grant ${grant.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    return { step: { kind: 'my.db.grant', name, account, revokeAll, grant, revoke }, summary };
  },
};

function grantChanges(
  diff: ResourceDiff,
  dialect: DbDialect,
  fromScratch: boolean,
  after: string[],
): Change<DbChangeData>[] {
  type Grants = Record<string, string[]>;
  const want: Grants = (diff.desired?.grants as Grants | undefined) ?? {};
  const cur: Grants = fromScratch ? {} : ((diff.current?.grants as Grants | undefined) ?? {});
  const out: Change<DbChangeData>[] = [];
  for (const who of Object.keys(want).sort()) {
    const canon = (l: string[] | undefined) => dialect.canonical(l ?? []) as string[];
    // own members only: a grantee named `__proto__` or `constructor` is a name, not Object.prototype
    const g = dialect.grant(diff.name, who, canon(want[who]), canon(Object.hasOwn(cur, who) ? cur[who] : undefined));
    if (!g) continue;
    out.push({
      ...stepsChange(diff, dialect.engine, fromScratch ? 'create' : 'update', g.summary, [g.step]),
      address: `${diff.address}/grants/${who}`,
      after,
      ops: opsFor(diff, `/grants/${who.replace(/~/g, '~0').replace(/\//g, '~1')}`),
    });
  }
  return out;
}

/** A database of either engine: create, drop, change in place or (a field that cannot change) recreate; then its grants. */
function planDatabase(diff: ResourceDiff, dialect: DbDialect): Change<DbChangeData>[] {
  const { engine, recreateOn: r } = dialect;
  if (diff.action === 'delete') return [dropChange(diff, engine, 'database and all its data', dialect.drop(diff.name))];
  // the database's own changes: everything but the grants (those are changes of their own)
  const change = (action: string, summary: string, steps: Step[]) => ({
    ...stepsChange(diff, engine, action, summary, steps),
    ops: opsExcept(diff, '/grants'),
  });
  const want = diff.desired ?? {};
  const fields: Record<string, string> = {};
  for (const [k] of dialect.fields) if (typeof want[k] === 'string' && want[k]) fields[k] = want[k];
  const create = dialect.create(diff.name, fields);
  if (diff.action === 'create') {
    const describe = dialect.fields
      .filter(([k]) => fields[k])
      .map(([k, w]) => `${w} ${fields[k]}`)
      .join(', ');
    return [
      change('create', `database${describe ? ` (${describe})` : ''}`, [create]),
      ...grantChanges(diff, dialect, true, [diff.address]),
    ];
  }
  const cur = diff.current ?? {};
  if (r && fields[r] && cur[r] !== undefined && fields[r] !== cur[r])
    return [
      {
        ...change('recreate', `database: ${r} ${String(cur[r])} → ${fields[r]}`, [dialect.drop(diff.name), create]),
        destructive: true,
        reason: `the ${r} of a database cannot change: it is dropped (all data lost) and created again`,
      },
      ...grantChanges(diff, dialect, true, [diff.address]),
    ];
  const changed: Record<string, string> = {};
  const text: string[] = [];
  for (const [k] of dialect.fields)
    if (k !== r && fields[k] && fields[k] !== cur[k]) {
      changed[k] = fields[k];
      text.push(`${k} ${String(cur[k] ?? '(unset)')} → ${fields[k]}`);
    }
  const own = text.length ? [change('update', text.join(', '), [dialect.alter(diff.name, changed)])] : [];
  return [...own, ...grantChanges(diff, dialect, false, own.length ? [diff.address] : [])];
}

export function planDatabases(diff: ResourceDiff): Change<DbChangeData>[] {
  switch (diff.collection) {
    case 'pg_roles':
      return planPgRole(diff);
    case 'pg_databases':
      return planDatabase(diff, PG_DB);
    case 'mysql_users':
      return planMyUser(diff);
    case 'mysql_databases':
      return planDatabase(diff, MY_DB);
    default:
      return [];
  }
}

/** A database after its owner; a grant after its grantee. */
export function databaseEdges(desired: Obj): Edge[] {
  const edges: Edge[] = [];
  const pgdbs = isObj(desired.pg_databases) ? desired.pg_databases : {};
  for (const [db, spec] of Object.entries(pgdbs)) {
    if (!isObj(spec)) continue;
    if (typeof spec.owner === 'string')
      edges.push({ from: `databases/pg_databases/${db}`, to: `databases/pg_roles/${spec.owner}`, kind: 'owner' });
    if (isObj(spec.grants))
      for (const r of Object.keys(spec.grants))
        edges.push({
          from: `databases/pg_databases/${db}/grants/${r}`,
          to: `databases/pg_roles/${r}`,
          kind: 'grantee',
        });
  }
  const mydbs = isObj(desired.mysql_databases) ? desired.mysql_databases : {};
  for (const [db, spec] of Object.entries(mydbs)) {
    if (!isObj(spec) || !isObj(spec.grants)) continue;
    for (const a of Object.keys(spec.grants))
      edges.push({
        from: `databases/mysql_databases/${db}/grants/${a}`,
        to: `databases/mysql_users/${a}`,
        kind: 'grantee',
      });
  }
  return edges.sort((x, y) =>
    x.from !== y.from ? (x.from < y.from ? -1 : 1) : x.to < y.to ? -1 : x.to > y.to ? 1 : 0,
  );
}
