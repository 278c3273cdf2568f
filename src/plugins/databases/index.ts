/**
 * databases: PostgreSQL roles and databases, MariaDB/MySQL users and databases, database grants.
 * Reads: one psql and one mysql process at most (only for the engines the document names).
 * Apply: one client process per engine and batch (plus one more per failed change).
 * Passwords are secrets: the servers receive verifiers computed here, reads compare the stored
 * verifier with the desired password without revealing either, summaries say "password changed".
 */
import { schemaOf } from '../../core/schema-file.js';
import type {
  ApplyContext,
  Change,
  ChangeResult,
  DoctorCheck,
  Edge,
  NormalizeContext,
  Obj,
  Plugin,
  ReadContext,
} from '../../core/plugin.js';
import { assertApplyContext } from '../../core/plugin.js';
import { toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { applyScripted, mysql, myEndpoint, pgEndpoint, psql } from './client.js';
import { pgReadRaw, pgRender, pgToSection } from './pg.js';
import { myReadRaw, myRender, myToSection } from './mysql.js';
import { COLLECTIONS, databaseEdges, myCanonical, pgCanonical, planDatabases, type DbChangeData } from './plan.js';
import { TUNABLES } from '../../core/tunables.js';

export interface DatabasesSection extends Obj {
  prune?: Partial<Record<(typeof COLLECTIONS)[number], boolean>>;
  pg_roles?: Record<string, Obj>;
  pg_databases?: Record<string, Obj>;
  mysql_users?: Record<string, Obj>;
  mysql_databases?: Record<string, Obj>;
}

/** One apply script may drop many databases (each DROP DATABASE waits for a checkpoint). */
const APPLY_TIMEOUT = TUNABLES.sqlApplyMs;

const names = (v: unknown) => (isObj(v) ? Object.keys(v).sort() : []);

function normalizeGrants(spec: unknown, canon: (l: unknown) => unknown): unknown {
  if (!isObj(spec) || !isObj(spec.grants)) return spec;
  return { ...spec, grants: Object.fromEntries(Object.entries(spec.grants).map(([k, v]) => [k, canon(v)])) };
}

async function readSection(ctx: ReadContext, desired: DatabasesSection, all: boolean): Promise<DatabasesSection> {
  const prune = isObj(desired.prune) ? desired.prune : {};
  const out: DatabasesSection = {};
  const wantPg = all || ['pg_roles', 'pg_databases'].some((c) => c in desired || prune[c as 'pg_roles']);
  const wantMy = all || ['mysql_users', 'mysql_databases'].some((c) => c in desired || prune[c as 'mysql_users']);
  const jobs: Promise<void>[] = [];
  if (wantPg)
    jobs.push(
      (async () => {
        const raw = await pgReadRaw(
          ctx.settings,
          names(desired.pg_roles),
          names(desired.pg_databases),
          all || prune.pg_roles === true,
          all || prune.pg_databases === true,
        );
        Object.assign(out, pgToSection(raw, desired, { includeSystem: false }));
      })(),
    );
  if (wantMy)
    jobs.push(
      (async () => {
        const raw = await myReadRaw(
          ctx.settings,
          names(desired.mysql_users),
          names(desired.mysql_databases),
          all || prune.mysql_users === true,
          all || prune.mysql_databases === true,
        );
        Object.assign(out, myToSection(raw, desired, { includeSystem: false }));
      })(),
    );
  await Promise.all(jobs);
  return out;
}

const plugin: Plugin<DatabasesSection, DbChangeData> = {
  name: 'databases',
  schema: schemaOf('databases'),
  collections: COLLECTIONS,

  normalize(section: unknown, _ctx: NormalizeContext) {
    // privilege lists in canonical form (upper case, sorted, ALL when complete); encodings upper case
    if (!isObj(section)) return section;
    const out: Obj = { ...section };
    if (isObj(out.pg_databases))
      out.pg_databases = Object.fromEntries(
        Object.entries(out.pg_databases).map(([k, v]) => {
          let s = normalizeGrants(v, pgCanonical);
          if (isObj(s) && typeof s.encoding === 'string')
            s = { ...s, encoding: s.encoding.toUpperCase().replace(/^UTF-8$/, 'UTF8') };
          return [k, s];
        }),
      );
    if (isObj(out.mysql_databases))
      out.mysql_databases = Object.fromEntries(
        Object.entries(out.mysql_databases).map(([k, v]) => [k, normalizeGrants(v, myCanonical)]),
      );
    return out;
  },

  async read(ctx: ReadContext, desired: DatabasesSection): Promise<DatabasesSection> {
    return readSection(ctx, desired ?? {}, false);
  },

  plan: planDatabases,

  async apply(ctx: ApplyContext, changes: Change<DbChangeData>[]): Promise<ChangeResult[]> {
    assertApplyContext(ctx);
    const pg = changes.filter((c) => c.data!.engine === 'pg');
    const my = changes.filter((c) => c.data!.engine === 'mysql');
    const results = new Map<Change<DbChangeData>, ChangeResult>();
    const settle = async (list: Change<DbChangeData>[], f: () => Promise<ChangeResult[]>) => {
      if (!list.length) return;
      try {
        const r = await f();
        list.forEach((c, i) => results.set(c, r[i]));
      } catch (err) {
        const e = toOpdError(err);
        for (const c of list) results.set(c, { address: c.address, status: 'failed', error: e });
      }
    };
    await Promise.all([
      settle(pg, () =>
        applyScripted(
          pg,
          pgRender,
          (i) => `\\echo opd-mark-${i}`,
          (sql, secrets) => psql(ctx.settings, sql, secrets, APPLY_TIMEOUT),
          'PostgreSQL',
        ),
      ),
      settle(my, () =>
        applyScripted(
          my,
          myRender,
          (i) => `SELECT 'opd-mark-${i}';`,
          (sql, secrets) => mysql(ctx.settings, sql, secrets, APPLY_TIMEOUT),
          'MariaDB',
        ),
      ),
    ]);
    return changes.map((c) => results.get(c)!);
  },

  edges(desired: DatabasesSection): Edge[] {
    return databaseEdges(desired);
  },

  async show(ctx: ReadContext): Promise<DatabasesSection> {
    const s = await readSection(ctx, {}, true);
    // grants of roles/accounts nobody could name back (PUBLIC is skipped already) stay; empty maps go
    for (const c of ['pg_databases', 'mysql_databases'] as const)
      for (const spec of Object.values(s[c] ?? {}))
        if (isObj(spec.grants) && !Object.keys(spec.grants).length) delete spec.grants;
    for (const c of COLLECTIONS) if (s[c] && !Object.keys(s[c]!).length) delete s[c];
    return s;
  },

  async doctor(ctx: ReadContext): Promise<DoctorCheck[]> {
    const checks: DoctorCheck[] = [];
    const pg = pgEndpoint(ctx.settings);
    try {
      const r = await psql(ctx.settings, 'SELECT version();\n');
      checks.push({
        name: 'databases: postgresql',
        ok: r.ok,
        detail: r.ok
          ? `${pg.host} port ${pg.port}: ${r.stdout.trim().split(' ').slice(0, 2).join(' ')}`
          : String(r.error),
      });
    } catch (err) {
      const e = toOpdError(err);
      checks.push({ name: 'databases: postgresql', ok: false, detail: e.message, hint: e.hint });
    }
    const my = myEndpoint(ctx.settings);
    try {
      const r = await mysql(ctx.settings, 'SELECT VERSION();\n');
      checks.push({
        name: 'databases: mysql',
        ok: r.ok,
        detail: r.ok ? `${my.socket}: ${r.stdout.trim()}` : String(r.error),
      });
    } catch (err) {
      const e = toOpdError(err);
      checks.push({ name: 'databases: mysql', ok: false, detail: e.message, hint: e.hint });
    }
    return checks;
  },
};

export default plugin;
