/**
 * Pure planning for the databases plugin: a resource diff becomes steps (no SQL yet: apply
 * renders the SQL and computes password verifiers with a fresh salt). Summaries never contain
 * a password: they say "password set" / "password changed".
 */
import type { Change, Edge, Obj, ResourceDiff } from '../../core/plugin.js';
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

const base = (diff: ResourceDiff) => ({ resource: diff.address, plugin: diff.plugin });

const passwordChanged = (diff: ResourceDiff) =>
  typeof diff.desired?.password === 'string' &&
  diff.ops.some((o) => o.path === '/password' && (o.op === 'add' || o.op === 'replace'));

function opsFor(diff: ResourceDiff, prefix: string): ResourceDiff['ops'] {
  return diff.ops.filter((o) => o.path === prefix || o.path.startsWith(prefix + '/'));
}

function opsExcept(diff: ResourceDiff, prefix: string): ResourceDiff['ops'] {
  return diff.ops.filter((o) => !(o.path === prefix || o.path.startsWith(prefix + '/')));
}

function planPgRole(diff: ResourceDiff): Change<DbChangeData>[] {
  const b = { ...base(diff), address: diff.address };
  const data = (steps: Step[]): DbChangeData => ({ engine: 'pg', steps });
  if (diff.action === 'delete')
    return [
      {
        ...b,
        action: 'delete',
        summary: 'role',
        destructive: true,
        ops: diff.ops,
        data: data([{ kind: 'pg.role.drop', name: diff.name }]),
      },
    ];
  const want = diff.desired!;
  if (diff.action === 'create') {
    const attrs: Record<string, boolean> = { login: true };
    for (const k of ROLE_ATTRS) if (typeof want[k] === 'boolean') attrs[k] = want[k] as boolean;
    const bits = [attrs.login ? 'login' : 'nologin', ...ROLE_ATTRS.filter((k) => k !== 'login' && attrs[k])];
    const password = typeof want.password === 'string' ? want.password : undefined;
    if (password) bits.push('password set');
    return [
      {
        ...b,
        action: 'create',
        summary: `role (${bits.join(', ')})`,
        ops: diff.ops,
        data: data([{ kind: 'pg.role.create', name: diff.name, attrs, ...(password ? { password } : {}) }]),
      },
    ];
  }
  const cur = diff.current ?? {};
  const attrs: Record<string, boolean> = {};
  const text: string[] = [];
  for (const k of ROLE_ATTRS)
    if (typeof want[k] === 'boolean' && want[k] !== cur[k]) {
      attrs[k] = want[k] as boolean;
      text.push(`${k} ${String(cur[k] ?? '(unset)')} → ${String(want[k])}`);
    }
  const pw = passwordChanged(diff) ? (want.password as string) : undefined;
  if (pw) text.push('password changed');
  if (!text.length) return [];
  return [
    {
      ...b,
      action: 'update',
      summary: text.join(', '),
      ops: diff.ops,
      data: data([{ kind: 'pg.role.alter', name: diff.name, attrs, ...(pw ? { password: pw } : {}) }]),
    },
  ];
}

function grantChanges(
  diff: ResourceDiff,
  engine: 'pg' | 'mysql',
  fromScratch: boolean,
  after: string[],
): Change<DbChangeData>[] {
  const want = isObj(diff.desired?.grants) ? (diff.desired!.grants as Record<string, string[]>) : {};
  const cur = !fromScratch && isObj(diff.current?.grants) ? (diff.current!.grants as Record<string, string[]>) : {};
  const out: Change<DbChangeData>[] = [];
  for (const who of Object.keys(want).sort()) {
    const canon = engine === 'pg' ? pgCanonical : myCanonical;
    const w = (canon(want[who] ?? []) as string[]) ?? [];
    const c = (canon(cur[who] ?? []) as string[]) ?? [];
    const address = `${diff.address}/grants/${who}`;
    const ops = opsFor(diff, `/grants/${who.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    if (engine === 'pg') {
      const ws = pgExpand(w),
        cs = pgExpand(c);
      const grant = [...ws].filter((p) => !cs.has(p)).sort();
      const revoke = [...cs].filter((p) => !ws.has(p)).sort();
      if (!grant.length && !revoke.length) continue;
      const text = [grant.length ? `grant ${words(grant)}` : '', revoke.length ? `revoke ${words(revoke)}` : '']
        .filter(Boolean)
        .join('; ');
      out.push({
        ...base(diff),
        address,
        action: fromScratch ? 'create' : 'update',
        summary: text,
        after,
        ops,
        data: {
          engine,
          steps: [{ kind: 'pg.db.grant', name: diff.name, role: who, grant, revoke }],
        } satisfies DbChangeData,
      });
    } else {
      const wAll = w.includes('ALL'),
        cAll = c.includes('ALL');
      let revokeAll = false;
      let grant: string[] = [];
      let revoke: string[] = [];
      if (wAll) {
        if (!cAll) grant = ['ALL'];
      } else if (cAll) {
        revokeAll = true;
        grant = [...w];
      } else {
        grant = w.filter((p) => !c.includes(p));
        revoke = c.filter((p) => !w.includes(p));
      }
      if (!revokeAll && !grant.length && !revoke.length) continue;
      const text = [
        revokeAll ? 'revoke ALL' : '',
        revoke.length ? `revoke ${revoke.join(', ')}` : '',
        grant.length ? `grant ${grant.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      out.push({
        ...base(diff),
        address,
        action: fromScratch ? 'create' : 'update',
        summary: text,
        after,
        ops,
        data: {
          engine,
          steps: [{ kind: 'my.db.grant', name: diff.name, account: who, revokeAll, grant, revoke }],
        } satisfies DbChangeData,
      });
    }
  }
  return out;
}

function planPgDatabase(diff: ResourceDiff): Change<DbChangeData>[] {
  const b = { ...base(diff), address: diff.address };
  const data = (steps: Step[]): DbChangeData => ({ engine: 'pg', steps });
  if (diff.action === 'delete')
    return [
      {
        ...b,
        action: 'delete',
        summary: 'database and all its data',
        destructive: true,
        ops: diff.ops,
        data: data([{ kind: 'pg.db.drop', name: diff.name }]),
      },
    ];
  const want = diff.desired!;
  const owner = typeof want.owner === 'string' ? want.owner : undefined;
  const encoding = typeof want.encoding === 'string' ? want.encoding : undefined;
  const createStep: Step = {
    kind: 'pg.db.create',
    name: diff.name,
    ...(owner ? { owner } : {}),
    ...(encoding ? { encoding } : {}),
  };
  const describe = [owner ? `owner ${owner}` : '', encoding ? `encoding ${encoding}` : ''].filter(Boolean).join(', ');
  if (diff.action === 'create') {
    return [
      {
        ...b,
        action: 'create',
        summary: `database${describe ? ` (${describe})` : ''}`,
        ops: opsExcept(diff, '/grants'),
        data: data([createStep]),
      },
      ...grantChanges(diff, 'pg', true, [diff.address]),
    ];
  }
  const cur = diff.current ?? {};
  if (encoding && cur.encoding !== undefined && encoding !== cur.encoding) {
    return [
      {
        ...b,
        action: 'recreate',
        destructive: true,
        summary: `database: encoding ${String(cur.encoding)} → ${encoding}`,
        reason: 'the encoding of a database cannot change: it is dropped (all data lost) and created again',
        ops: opsExcept(diff, '/grants'),
        data: data([{ kind: 'pg.db.drop', name: diff.name }, createStep]),
      },
      ...grantChanges(diff, 'pg', true, [diff.address]),
    ];
  }
  const out: Change<DbChangeData>[] = [];
  if (owner && owner !== cur.owner)
    out.push({
      ...b,
      action: 'update',
      summary: `owner ${String(cur.owner ?? '(unset)')} → ${owner}`,
      ops: opsExcept(diff, '/grants'),
      data: data([{ kind: 'pg.db.owner', name: diff.name, owner }]),
    });
  out.push(...grantChanges(diff, 'pg', false, out.length ? [diff.address] : []));
  return out;
}

function planMyUser(diff: ResourceDiff): Change<DbChangeData>[] {
  const b = { ...base(diff), address: diff.address };
  const data = (steps: Step[]): DbChangeData => ({ engine: 'mysql', steps });
  if (diff.action === 'delete')
    return [
      {
        ...b,
        action: 'delete',
        summary: 'user and its grants',
        destructive: true,
        ops: diff.ops,
        data: data([{ kind: 'my.user.drop', account: diff.name }]),
      },
    ];
  const want = diff.desired!;
  const password = typeof want.password === 'string' ? want.password : undefined;
  if (diff.action === 'create')
    return [
      {
        ...b,
        action: 'create',
        summary: password ? 'user (password set)' : 'user (no password)',
        ops: diff.ops,
        data: data([{ kind: 'my.user.create', account: diff.name, ...(password ? { password } : {}) }]),
      },
    ];
  if (password && passwordChanged(diff))
    return [
      {
        ...b,
        action: 'update',
        summary: 'password changed',
        ops: diff.ops,
        data: data([{ kind: 'my.user.password', account: diff.name, password }]),
      },
    ];
  return [];
}

function planMyDatabase(diff: ResourceDiff): Change<DbChangeData>[] {
  const b = { ...base(diff), address: diff.address };
  const data = (steps: Step[]): DbChangeData => ({ engine: 'mysql', steps });
  if (diff.action === 'delete')
    return [
      {
        ...b,
        action: 'delete',
        summary: 'database and all its data',
        destructive: true,
        ops: diff.ops,
        data: data([{ kind: 'my.db.drop', name: diff.name }]),
      },
    ];
  const want = diff.desired!;
  const cs = typeof want.character_set === 'string' ? want.character_set : undefined;
  const co = typeof want.collation === 'string' ? want.collation : undefined;
  if (diff.action === 'create') {
    const describe = [cs ? `character set ${cs}` : '', co ? `collation ${co}` : ''].filter(Boolean).join(', ');
    return [
      {
        ...b,
        action: 'create',
        summary: `database${describe ? ` (${describe})` : ''}`,
        ops: opsExcept(diff, '/grants'),
        data: data([
          {
            kind: 'my.db.create',
            name: diff.name,
            ...(cs ? { character_set: cs } : {}),
            ...(co ? { collation: co } : {}),
          },
        ]),
      },
      ...grantChanges(diff, 'mysql', true, [diff.address]),
    ];
  }
  const cur = diff.current ?? {};
  const out: Change<DbChangeData>[] = [];
  const text: string[] = [];
  const alter: Step = { kind: 'my.db.alter', name: diff.name };
  if (cs && cs !== cur.character_set) {
    alter.character_set = cs;
    text.push(`character_set ${String(cur.character_set)} → ${cs}`);
  }
  if (co && co !== cur.collation) {
    alter.collation = co;
    text.push(`collation ${String(cur.collation)} → ${co}`);
  }
  if (text.length)
    out.push({
      ...b,
      action: 'update',
      summary: text.join(', '),
      ops: opsExcept(diff, '/grants'),
      data: data([alter]),
    });
  out.push(...grantChanges(diff, 'mysql', false, out.length ? [diff.address] : []));
  return out;
}

export function planDatabases(diff: ResourceDiff): Change<DbChangeData>[] {
  switch (diff.collection) {
    case 'pg_roles':
      return planPgRole(diff);
    case 'pg_databases':
      return planPgDatabase(diff);
    case 'mysql_users':
      return planMyUser(diff);
    case 'mysql_databases':
      return planMyDatabase(diff);
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
