import { describe, expect, it } from 'vitest';
import type { ResourceDiff } from '../../../../src/core/plugin.js';
import { compare } from '../../../../src/core/diff.js';
import {
  databaseEdges,
  myCanonical,
  pgCanonical,
  planDatabases,
  type DbChangeData,
} from '../../../../src/plugins/databases/plan.js';
import { pgStepSql } from '../../../../src/plugins/databases/pg.js';
import { myStepSql } from '../../../../src/plugins/databases/mysql.js';

function diff(
  collection: string,
  name: string,
  current: Record<string, unknown> | undefined,
  desired: Record<string, unknown> | undefined,
): ResourceDiff {
  const action = desired === undefined ? 'delete' : current === undefined ? 'create' : 'update';
  return {
    plugin: 'databases',
    collection,
    name,
    address: `databases/${collection}/${name}`,
    action,
    current,
    desired,
    ops: action === 'delete' ? [{ op: 'remove', path: '' }] : compare(current ?? {}, desired ?? {}),
    allowDestroy: false,
  };
}

describe('privilege lists', () => {
  it('puts PostgreSQL privileges in canonical form', () => {
    expect(pgCanonical(['temp', 'connect'])).toEqual(['CONNECT', 'TEMPORARY']);
    expect(pgCanonical(['connect', 'create', 'temporary'])).toEqual(['ALL']);
    expect(pgCanonical(['all privileges'])).toEqual(['ALL']);
  });

  it('puts MariaDB privileges in canonical form', () => {
    expect(myCanonical(['insert', 'select'])).toEqual(['INSERT', 'SELECT']);
    expect(myCanonical(['ALL PRIVILEGES', 'SELECT'])).toEqual(['ALL']);
    expect(myCanonical(['create  temporary tables'])).toEqual(['CREATE TEMPORARY TABLES']);
  });
});

describe('plan', () => {
  it('never puts a password into a summary', () => {
    const c = planDatabases(diff('pg_roles', 'nexus', { login: true }, { login: true, password: 'hunter22' }));
    expect(c).toHaveLength(1);
    expect(c[0].summary).toBe('password changed');
    expect(JSON.stringify(c.map((x) => [x.summary, x.reason]))).not.toContain('hunter22');
  });

  it('creates a role that can log in unless told otherwise', () => {
    const [c] = planDatabases(diff('pg_roles', 'nexus', undefined, { password: 'pw' }));
    expect(c.summary).toBe('role (login, password set)');
    const sql = pgStepSql((c.data as DbChangeData).steps[0], []);
    expect(sql[0]).toMatch(/^CREATE ROLE "nexus" WITH LOGIN PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(sql[0]).not.toContain("'pw'");
  });

  it('grants after creating the database and only what is missing later', () => {
    const created = planDatabases(
      diff('pg_databases', 'nexus', undefined, { owner: 'nexus', grants: { app: ['CONNECT'] } }),
    );
    expect(created.map((c) => [c.address, c.action])).toEqual([
      ['databases/pg_databases/nexus', 'create'],
      ['databases/pg_databases/nexus/grants/app', 'create'],
    ]);
    expect(created[1].after).toEqual(['databases/pg_databases/nexus']);
    const updated = planDatabases(
      diff(
        'pg_databases',
        'nexus',
        { owner: 'nexus', grants: { app: ['ALL'] } },
        { owner: 'nexus', grants: { app: ['CONNECT'] } },
      ),
    );
    expect(updated.map((c) => c.summary)).toEqual(['revoke CREATE, TEMPORARY']);
    expect(pgStepSql((updated[0].data as DbChangeData).steps[0], [])).toEqual([
      'REVOKE CREATE, TEMPORARY ON DATABASE "nexus" FROM "app";',
    ]);
  });

  it('plans a grantee named __proto__ or constructor like any other (found by the fuzz harness)', () => {
    for (const engine of ['pg_databases', 'mysql_databases'] as const) {
      const who = engine === 'pg_databases' ? ['__proto__', 'constructor'] : ['__proto__@localhost', 'constructor'];
      const grants = JSON.parse(`{${who.map((w) => `"${w}": ["ALL"]`).join(',')}}`) as Record<string, string[]>;
      const cs = planDatabases(diff(engine, 'd', { grants: {} }, { grants }));
      expect(cs.map((c) => [c.address, c.summary])).toEqual(
        who
          .sort()
          .map((w) => [`databases/${engine}/d/grants/${w}`, engine === 'pg_databases' ? 'grant ALL' : 'grant ALL']),
      );
    }
  });

  it('treats an encoding change as a destructive re-creation', () => {
    const [c] = planDatabases(diff('pg_databases', 'd', { encoding: 'LATIN1' }, { encoding: 'UTF8' }));
    expect(c.action).toBe('recreate');
    expect(c.destructive).toBe(true);
  });

  it('marks every drop as destructive', () => {
    for (const coll of ['pg_roles', 'pg_databases', 'mysql_users', 'mysql_databases']) {
      const [c] = planDatabases(diff(coll, 'x', {}, undefined));
      expect(c.action).toBe('delete');
      expect(c.destructive).toBe(true);
    }
  });

  it('narrows a MariaDB grant from ALL by revoking all and granting the rest', () => {
    const [c] = planDatabases(
      diff(
        'mysql_databases',
        'ravada',
        { grants: { 'u@localhost': ['ALL'] } },
        { grants: { 'u@localhost': ['SELECT'] } },
      ),
    );
    expect(myStepSql((c.data as DbChangeData).steps[0], [])).toEqual([
      "REVOKE ALL PRIVILEGES ON `ravada`.* FROM 'u'@'localhost';",
      "GRANT SELECT ON `ravada`.* TO 'u'@'localhost';",
    ]);
  });

  it('sets MariaDB passwords as a hash, never in clear', () => {
    const [c] = planDatabases(diff('mysql_users', 'rvd_user@localhost', undefined, { password: 'password' }));
    const secrets: string[] = [];
    expect(myStepSql((c.data as DbChangeData).steps[0], secrets)).toEqual([
      "CREATE USER 'rvd_user'@'localhost' IDENTIFIED WITH mysql_native_password AS '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19';",
    ]);
    expect(secrets).toContain('password');
  });

  it('ignores a password that only vanished from the current state (rollback of a change)', () => {
    expect(planDatabases(diff('mysql_users', 'u@localhost', { password: 'x' }, {}))).toEqual([]);
  });
});

describe('edges', () => {
  it('orders a database after its owner and a grant after its grantee', () => {
    expect(
      databaseEdges({
        pg_databases: { d: { owner: 'o', grants: { g: ['ALL'] } } },
        mysql_databases: { m: { grants: { 'u@localhost': ['ALL'] } } },
      }),
    ).toEqual([
      {
        from: 'databases/mysql_databases/m/grants/u@localhost',
        to: 'databases/mysql_users/u@localhost',
        kind: 'grantee',
      },
      { from: 'databases/pg_databases/d', to: 'databases/pg_roles/o', kind: 'owner' },
      { from: 'databases/pg_databases/d/grants/g', to: 'databases/pg_roles/g', kind: 'grantee' },
    ]);
  });
});
