/**
 * databases plugin against a real PostgreSQL and a real MariaDB, each initialized in a temp dir
 * by scripts/backends/databases.sh and listening only on a private socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, doc, opd, tmp, uniq, type OpdRun } from '../helpers/opd.js';
import { canonical, sha256 } from '../../src/core/canonical.js';

const dir = tmp('opd-db-');
const srv = join(dir, 'servers');
chmodSync(dir, 0o755); // the servers run as postgres / mysql and must reach their directory
const env: Record<string, string> = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_LOG_LEVEL: 'trace' };
const runs: OpdRun[] = [];
const id = uniq(6).replace(/[^a-z0-9]/g, 'x');
const role = `opdt_${id}`;
const pgdb = `opdt_${id}_db`;
const myuser = `opdt_${id}`;
const mydb = `opdt_${id}_db`;
const pw1 = `Pg-first-${uniq(10)}-secret`;
const pw2 = `Pg-second-${uniq(10)}-secret`;
const mpw1 = `My-first-${uniq(10)}-secret`;
const mpw2 = `My-second-${uniq(10)}-secret`;

async function run(args: string[], extra: Record<string, string> = {}): Promise<OpdRun> {
  const r = await opd(args, { env: { ...env, ...extra } });
  runs.push(r);
  return r;
}

async function pg(sql: string): Promise<string> {
  const r = await execa(
    'runuser',
    [
      '-u',
      'postgres',
      '--',
      'psql',
      '-X',
      '-A',
      '-t',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      env.OPD_PG_HOST,
      '-p',
      env.OPD_PG_PORT,
      '-d',
      'postgres',
      '-f',
      '-',
    ],
    { input: sql, cwd: '/' },
  );
  return r.stdout.trim();
}

async function my(sql: string): Promise<string> {
  const r = await execa(
    'mysql',
    ['--socket', env.OPD_MYSQL_SOCKET, '-u', 'root', '--batch', '--raw', '--skip-column-names'],
    { input: sql },
  );
  return r.stdout.trim();
}

/** Log in as the role / user with a password (the test's own client; never through opd). */
async function pgLogin(password: string): Promise<boolean> {
  const r = await execa(
    'psql',
    [
      '-X',
      '-A',
      '-t',
      '-h',
      env.OPD_PG_HOST,
      '-p',
      env.OPD_PG_PORT,
      '-U',
      role,
      '-d',
      pgdb,
      '-c',
      'select current_user',
    ],
    { env: { PGPASSWORD: password }, reject: false },
  );
  return r.exitCode === 0 && r.stdout.trim() === role;
}

async function myLogin(password: string): Promise<boolean> {
  const r = await execa(
    'mysql',
    [
      '--socket',
      env.OPD_MYSQL_SOCKET,
      '-u',
      myuser,
      '--batch',
      '--skip-column-names',
      mydb,
      '-e',
      'select current_user()',
    ],
    { env: { MYSQL_PWD: password }, reject: false },
  );
  return r.exitCode === 0 && r.stdout.trim() === `${myuser}@localhost`;
}

/** Everything both servers hold about roles, users, databases and grants (password verifiers included). */
async function dump(): Promise<string> {
  const p = await pg(`SELECT rolname, rolcanlogin, rolpassword FROM pg_authid ORDER BY 1;
    SELECT datname, pg_get_userbyid(datdba), encoding, datacl FROM pg_database ORDER BY 1;`);
  const m = await my(`SELECT User, Host, plugin, authentication_string FROM mysql.user ORDER BY 1, 2;
    SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA ORDER BY 1;
    SELECT GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES ORDER BY 1, 2, 3;`);
  return p + '\n---\n' + m;
}

function stateDoc(pgPassword: string, myPassword: string, extra = ''): string {
  return `version: 1
plugins:
  databases:
    pg_roles:
      ${role}: { password: "${pgPassword}", login: true${extra} }
    pg_databases:
      ${pgdb}: { owner: ${role}, encoding: UTF8, grants: { ${role}: [all] } }
    mysql_users:
      ${myuser}@localhost: { password: "${myPassword}"${extra} }
    mysql_databases:
      ${mydb}: { character_set: utf8mb4, grants: { ${myuser}@localhost: [ALL PRIVILEGES] } }
`;
}

beforeAll(async () => {
  const r = await execa(
    'bash',
    [join(ROOT, 'scripts/backends/databases.sh'), 'up', srv, String(50000 + Math.floor(Math.random() * 9000))],
    { reject: false },
  );
  if (r.exitCode !== 0)
    throw new Error(`scripts/backends/databases.sh up failed (a missing backend fails this test):\n${r.stderr}`);
  for (const line of r.stdout.split('\n')) {
    const m = /^(OPD_[A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  expect(env.OPD_PG_HOST).toBeTruthy();
  expect(env.OPD_MYSQL_SOCKET).toBeTruthy();
});

afterAll(async () => {
  await execa('bash', [join(ROOT, 'scripts/backends/databases.sh'), 'down', srv], { reject: false });
});

describe('databases plugin on real PostgreSQL and MariaDB', () => {
  const first = doc(stateDoc(pw1, mpw1), dir, 'first.yaml');
  const second = doc(stateDoc(pw2, mpw2), dir, 'second.yaml');

  it('rejects names that are not plain identifiers before touching anything', async () => {
    const bad = doc(
      `version: 1\nplugins:\n  databases:\n    pg_roles:\n      "x; DROP ROLE postgres": {}\n    mysql_databases:\n      "a\`b": {}\n`,
      dir,
      'bad.yaml',
    );
    const r = await run(['validate', bad]);
    expect(r.code).toBe(65);
    expect(r.stderr + r.stdout).toMatch(/pg_roles/);
    expect(r.stderr + r.stdout).toMatch(/mysql_databases/);
  });

  it('says which server it cannot reach and how to point opd at it', async () => {
    const r = await run(['diff', first], { OPD_PG_HOST: join(dir, 'nowhere') });
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/PostgreSQL is not reachable/);
    expect(r.stderr).toMatch(/--pg-host/);
  });

  it('plans the creation as a dry run that leaves both servers untouched', async () => {
    const before = await dump();
    const r = await run(['diff', first]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`+ databases/pg_roles/${role}: role (login, password set)`);
    expect(r.stdout).toContain(`+ databases/mysql_users/${myuser}@localhost: user (password set)`);
    expect(await dump()).toBe(before);
  });

  it('creates the databases, the role and user with their passwords, and the grants', async () => {
    const r = await run(['apply', first]);
    expect(r.stderr).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    expect(
      await pg(
        `SELECT pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '${pgdb}'`,
      ),
    ).toBe(`${role} UTF8`);
    expect(await pg(`SELECT rolcanlogin FROM pg_roles WHERE rolname = '${role}'`)).toBe('t');
    expect(await pg(`SELECT has_database_privilege('${role}', '${pgdb}', 'CREATE, CONNECT, TEMPORARY')`)).toBe('t');
    expect(await pg(`SELECT rolpassword LIKE 'SCRAM-SHA-256$4096:%' FROM pg_authid WHERE rolname = '${role}'`)).toBe(
      't',
    );
    expect(
      await my(`SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${mydb}'`),
    ).toBe('utf8mb4');
    expect(await my(`SHOW GRANTS FOR '${myuser}'@'localhost'`)).toContain(
      `GRANT ALL PRIVILEGES ON \`${mydb.replace(/_/g, '\\_')}\`.* TO \`${myuser}\`@\`localhost\``,
    );
    expect(await pgLogin(pw1)).toBe(true);
    expect(await pgLogin('not-the-password')).toBe(false);
    expect(await myLogin(mpw1)).toBe(true);
    expect(await myLogin('not-the-password')).toBe(false);
  });

  it('reports zero changes on a second apply and a clean diff', async () => {
    const again = await run(['apply', first]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('no changes');
    const d = await run(['diff', first]);
    expect(d.code).toBe(0);
  });

  it('detects a changed password without showing it, and applies it', async () => {
    const before = await dump();
    const d = await run(['diff', second]);
    expect(d.code).toBe(2);
    expect(d.stdout).toContain(`~ databases/pg_roles/${role}: password changed`);
    expect(d.stdout).toContain(`~ databases/mysql_users/${myuser}@localhost: password changed`);
    const j = await run(['diff', '-o', 'json', second]);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout).changes.map((c: { address: string }) => c.address)).toEqual([
      `databases/mysql_users/${myuser}@localhost`,
      `databases/pg_roles/${role}`,
    ]);
    expect(await dump()).toBe(before);
    const a = await run(['apply', second]);
    expect(a.code).toBe(0);
    expect(await pgLogin(pw2)).toBe(true);
    expect(await pgLogin(pw1)).toBe(false);
    expect(await myLogin(mpw2)).toBe(true);
    expect(await myLogin(mpw1)).toBe(false);
    const again = await run(['apply', second]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('no changes');
  });

  it('shows the host as a document that applies with zero changes', async () => {
    const s = await run(['show', '--plugin', 'databases', '-o', 'yaml']);
    expect(s.code).toBe(0);
    expect(s.stdout).toContain(`${myuser}@localhost`);
    expect(s.stdout).not.toContain('password');
    const shown = doc(s.stdout, dir, 'shown.yaml');
    const d = await run(['diff', shown]);
    expect(d.stdout).toContain('no changes');
    expect(d.code).toBe(0);
  });

  it('revokes a privilege the document no longer lists', async () => {
    const narrowed = doc(
      stateDoc(pw2, mpw2)
        .replace(`${role}: [all]`, `${role}: [connect, temp]`)
        .replace('[ALL PRIVILEGES]', '[SELECT, INSERT]'),
      dir,
      'narrow.yaml',
    );
    const a = await run(['apply', narrowed]);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain(`databases/pg_databases/${pgdb}/grants/${role}: revoke CREATE`);
    expect(await pg(`SELECT has_database_privilege('${role}', '${pgdb}', 'CREATE')`)).toBe('f');
    expect(
      await my(
        `SELECT GROUP_CONCAT(PRIVILEGE_TYPE ORDER BY PRIVILEGE_TYPE) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = "'${myuser}'@'localhost'"`,
      ),
    ).toBe('INSERT,SELECT');
    const again = await run(['apply', narrowed]);
    expect(again.stdout).toContain('no changes');
    expect((await run(['apply', second])).code).toBe(0);
  });

  it('refuses state: absent without allow_destroy and leaves everything in place', async () => {
    const absent = doc(
      `version: 1\nplugins:\n  databases:\n    pg_roles:\n      ${role}: { state: absent }\n    pg_databases:\n      ${pgdb}: { state: absent }\n    mysql_users:\n      ${myuser}@localhost: { state: absent }\n    mysql_databases:\n      ${mydb}: { state: absent }\n`,
      dir,
      'absent.yaml',
    );
    const before = await dump();
    const r = await run(['apply', absent]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/refused/);
    expect(await dump()).toBe(before);
  });

  it('drops the databases, role and user with allow_destroy, in dependency order', async () => {
    const absent = doc(
      `version: 1\nplugins:\n  databases:\n    pg_roles:\n      ${role}: { state: absent, allow_destroy: true }\n    pg_databases:\n      ${pgdb}: { state: absent, allow_destroy: true }\n    mysql_users:\n      ${myuser}@localhost: { state: absent, allow_destroy: true }\n    mysql_databases:\n      ${mydb}: { state: absent, allow_destroy: true }\n`,
      dir,
      'absent-ok.yaml',
    );
    const r = await run(['apply', absent]);
    expect(r.code).toBe(0);
    expect(r.stdout.indexOf(`databases/pg_databases/${pgdb}`)).toBeLessThan(
      r.stdout.indexOf(`databases/pg_roles/${role}`),
    );
    expect(await pg(`SELECT count(*) FROM pg_database WHERE datname = '${pgdb}'`)).toBe('0');
    expect(await pg(`SELECT count(*) FROM pg_roles WHERE rolname = '${role}'`)).toBe('0');
    expect(await my(`SELECT count(*) FROM mysql.user WHERE User = '${myuser}'`)).toBe('0');
    expect(await my(`SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${mydb}'`)).toBe('0');
    const again = await run(['apply', absent]);
    expect(again.stdout).toContain('no changes');
  });

  it('keeps the audit trail intact', async () => {
    const r = await run(['audit', 'verify']);
    expect(r.code).toBe(0);
  });

  it('never lets a password reach stdout, stderr, the logs or the audit trail', async () => {
    const texts = runs.flatMap((r) => [r.stdout, r.stderr]);
    for (const f of [env.OPD_AUDIT_LOG, join(srv, 'pg/server.log'), join(srv, 'my/error.log')])
      if (existsSync(f)) texts.push(readFileSync(f, 'utf8'));
    expect(texts.join('').length).toBeGreaterThan(1000);
    for (const secret of [pw1, pw2, mpw1, mpw2]) for (const t of texts) expect(t.includes(secret)).toBe(false);
    const audit = readFileSync(env.OPD_AUDIT_LOG, 'utf8');
    expect(audit).toMatch(/<secret hmac-sha256:[0-9a-f]+>/);
    // nor an unkeyed hash of it (a fingerprint of {"password": …} could be brute-forced)
    for (const secret of [mpw1, mpw2]) expect(audit).not.toContain(sha256(canonical({ password: secret })));
    for (const secret of [pw1, pw2]) expect(audit).not.toContain(sha256(canonical({ login: true, password: secret })));
  });
});
