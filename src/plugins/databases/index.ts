/**
 * databases: PostgreSQL roles and databases, MariaDB/MySQL users and databases, database grants.
 * Reads: one psql and one mysql process at most (only for the engines the document names).
 * Apply: one client process per engine and batch (plus one more per failed change).
 * Passwords are secrets: the servers receive verifiers computed here, reads compare the stored
 * verifier with the desired password without revealing either, summaries say "password changed".
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest, { TUNABLES } from './manifest.js';
import type { Change, ChangeResult, DoctorCheck, Obj, Plugin, ReadContext, Settings } from '../../core/plugin.js';
import { assertApplyContext } from '../../core/plugin.js';
import { toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { applyScripted, mysql, myEndpoint, pgEndpoint, psql, type EngineRead, type SqlClient } from './client.js';
import type { DatabasesDoc } from './section.gen.js';
import { pgRead, pgStepSql } from './pg.js';
import { myRead, myStepSql } from './mysql.js';
import {
  COLLECTIONS,
  MY_COLLECTIONS,
  PG_COLLECTIONS,
  databaseEdges,
  myCanonical,
  pgCanonical,
  planDatabases,
  type DbChangeData,
  type Step,
} from './plan.js';

/** The section's type, generated from schema/databases.schema.json (npm run gen:types). */
export type DatabasesSection = DatabasesDoc & Obj;

/** One apply script may drop many databases (each DROP DATABASE waits for a checkpoint). */
const APPLY_TIMEOUT = TUNABLES.sqlApplyMs;

const names = (v: unknown) => (isObj(v) ? Object.keys(v).sort() : []);

function normalizeGrants(spec: unknown, canon: (l: unknown) => unknown): unknown {
  if (!isObj(spec) || !isObj(spec.grants)) return spec;
  return { ...spec, grants: Object.fromEntries(Object.entries(spec.grants).map(([k, v]) => [k, canon(v)])) };
}

/** What the plugin does with each engine: read its two collections, apply scripts, ask its version. */
interface Engine {
  engine: DbChangeData['engine'];
  collections: readonly [string, string];
  /** the engine's part of the section: the members `named` in each collection, or all of it (`all`) */
  read: EngineRead;
  client: SqlClient;
  /** the statements of a step; the secrets in them go to `secrets` */
  stepSql(step: Step, secrets: string[]): string[];
  /** a statement that prints the marker of change i (apply tells the changes of a script apart by them) */
  mark(i: number): string;
  /** the name in errors of apply */
  label: string;
  /** doctor: the check's name, the version query and how its answer reads */
  doctor: { name: string; sql: string; detail(settings: Settings, stdout: string): string };
}

const ENGINES: Engine[] = [
  {
    engine: 'pg',
    collections: PG_COLLECTIONS,
    read: pgRead,
    client: psql,
    stepSql: pgStepSql,
    mark: (i) => `\\echo opd-mark-${i}`,
    label: 'PostgreSQL',
    doctor: {
      name: 'databases: postgresql',
      sql: 'SELECT version();\n',
      detail(settings, stdout) {
        const pg = pgEndpoint(settings);
        return `${pg.host} port ${pg.port}: ${stdout.trim().split(' ').slice(0, 2).join(' ')}`;
      },
    },
  },
  {
    engine: 'mysql',
    collections: MY_COLLECTIONS,
    read: myRead,
    client: mysql,
    stepSql: myStepSql,
    mark: (i) => `SELECT 'opd-mark-${i}';`,
    label: 'MariaDB',
    doctor: {
      name: 'databases: mysql',
      sql: 'SELECT VERSION();\n',
      detail: (settings, stdout) => `${myEndpoint(settings).socket}: ${stdout.trim()}`,
    },
  },
];

/** A change's statements, and every secret in them (no message may show one). */
function renderSteps(c: Change<DbChangeData>, stepSql: Engine['stepSql']) {
  const secrets: string[] = [];
  return { sql: c.data!.steps.flatMap((s) => stepSql(s, secrets)), secrets };
}

/** Only the engines the document names (or, for show, both). */
async function readSection(ctx: ReadContext, desired: DatabasesSection, all: boolean): Promise<DatabasesSection> {
  const prune: Record<string, boolean | undefined> = desired.prune ?? {};
  const parts = await Promise.all(
    ENGINES.filter((e) => all || e.collections.some((c) => c in desired || prune[c])).map((e) =>
      e.read(
        ctx.settings,
        desired,
        e.collections.map((c) => names(desired[c])),
        e.collections.map((c) => all || prune[c] === true),
      ),
    ),
  );
  return Object.assign({}, ...parts);
}

const plugin: Plugin<DatabasesSection, DbChangeData> = {
  ...sectionSpec(manifest),

  normalize(section) {
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

  async read(ctx, desired) {
    return readSection(ctx, desired ?? {}, false);
  },

  plan: planDatabases,

  async apply(ctx, changes) {
    assertApplyContext(ctx);
    const results = new Map<Change<DbChangeData>, ChangeResult>();
    // one script per engine, the engines side by side
    await Promise.all(
      ENGINES.map(async (e) => {
        const list = changes.filter((c) => c.data!.engine === e.engine);
        if (!list.length) return;
        try {
          const run = (sql: string, secrets: string[]) => e.client(ctx.settings, sql, secrets, APPLY_TIMEOUT, ctx);
          const r = await applyScripted(list, (c) => renderSteps(c, e.stepSql), e.mark, run, e.label);
          list.forEach((c, i) => results.set(c, r[i]));
        } catch (err) {
          const error = toOpdError(err);
          for (const c of list) results.set(c, { address: c.address, status: 'failed', error });
        }
      }),
    );
    return changes.map((c) => results.get(c)!);
  },

  edges: databaseEdges,

  async show(ctx) {
    const s = await readSection(ctx, {}, true);
    // grants of roles/accounts nobody could name back (PUBLIC is skipped already) stay; empty maps go
    for (const c of ['pg_databases', 'mysql_databases'] as const)
      for (const spec of Object.values(s[c] ?? {}))
        if (isObj(spec.grants) && !Object.keys(spec.grants).length) delete spec.grants;
    for (const c of COLLECTIONS) if (s[c] && !Object.keys(s[c]!).length) delete s[c];
    return s;
  },

  async doctor(ctx) {
    const checks: DoctorCheck[] = [];
    for (const { client, doctor: d } of ENGINES)
      try {
        const r = await client(ctx.settings, d.sql);
        checks.push({ name: d.name, ok: r.ok, detail: r.ok ? d.detail(ctx.settings, r.stdout) : String(r.error) });
      } catch (err) {
        const e = toOpdError(err);
        checks.push({ name: d.name, ok: false, detail: e.message, hint: e.hint });
      }
    return checks;
  },
};

export default plugin;
