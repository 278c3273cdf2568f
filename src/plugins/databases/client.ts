/**
 * The two clients, run through src/exec.ts: psql as the PostgreSQL superuser over the socket
 * directory (peer auth: `runuser -u postgres` when opd runs as root) and mysql as root over the
 * socket (unix_socket auth). SQL always travels on stdin, never in argv; errors are scrubbed of
 * secrets before anyone sees them.
 */
import { runMutate, runRead, type ExecOptions } from '../../exec.js';
import { OpdError } from '../../core/errors.js';
import type { ApplyContext, Change, ChangeResult, Obj, Settings } from '../../core/plugin.js';
import { scrub } from './sql.js';
import { MYSQL_SOCKET, MYSQL_USER, PG_HOST, PG_PORT, PG_USER, TUNABLES } from './manifest.js';
import { settingOf } from '../../core/manifest.js';

export interface PgEndpoint {
  host: string;
  port: string;
  user: string;
}

export interface MyEndpoint {
  socket: string;
  user: string;
}

export function pgEndpoint(s: Settings): PgEndpoint {
  return {
    host: settingOf(s, PG_HOST)!,
    port: settingOf(s, PG_PORT)!,
    user: settingOf(s, PG_USER)!,
  };
}

export function myEndpoint(s: Settings): MyEndpoint {
  return {
    socket: settingOf(s, MYSQL_SOCKET)!,
    user: settingOf(s, MYSQL_USER)!,
  };
}

function tail(s: string, n = 6): string {
  return s.trim().split('\n').slice(-n).join('\n');
}

export interface SqlResult {
  /** false when a statement failed (the script stopped there) */
  ok: boolean;
  stdout: string;
  error?: string;
}

/**
 * A client: runs SQL as the superuser. Connection trouble throws; a failing statement returns
 * ok=false. Reads (and doctor) go through the read door; an apply passes its ApplyContext and goes
 * through the mutate door (the dry-run guard, and the run's signal stops the client).
 */
export type SqlClient = (
  settings: Settings,
  sql: string,
  secrets?: Iterable<string>,
  timeout?: number,
  apply?: ApplyContext,
) => Promise<SqlResult>;

const door = (apply: ApplyContext | undefined, cmd: string, args: string[], opts: ExecOptions) =>
  apply ? runMutate(apply, cmd, args, opts) : runRead(cmd, args, opts);

/** The PostgreSQL client: psql as the superuser. */
export const psql: SqlClient = async (settings, sql, secrets = [], timeout = TUNABLES.sqlMs, apply) => {
  const ep = pgEndpoint(settings);
  const args = [
    '-X',
    '-q',
    '-A',
    '-t',
    '-v',
    'ON_ERROR_STOP=1',
    '-v',
    'VERBOSITY=terse',
    '-h',
    ep.host,
    '-p',
    ep.port,
    '-U',
    ep.user,
    '-d',
    'postgres',
    '-f',
    '-',
  ];
  const asRoot = process.getuid?.() === 0 && ep.user !== 'root';
  const cmd = asRoot ? 'runuser' : 'psql';
  const argv = asRoot ? ['-u', ep.user, '--', 'psql', ...args] : args;
  const r = await door(apply, cmd, argv, {
    input: sql,
    cwd: '/',
    timeout,
    okCodes: [0, 1, 2, 3],
    backend: 'PostgreSQL',
    installHint: 'apt-get install postgresql-client (and util-linux for runuser)',
    env: {
      PGAPPNAME: 'opd',
      PGCONNECT_TIMEOUT: String(TUNABLES.sqlConnectS),
      PGOPTIONS: '-c client_min_messages=warning',
    },
  });
  const stderr = scrub(r.stderr, secrets);
  if (r.exitCode === 0) return { ok: true, stdout: r.stdout };
  if (r.exitCode === 3) return { ok: false, stdout: r.stdout, error: tail(stderr.replace(/^psql:[^:]*:\d+: /gm, '')) };
  const where = `${ep.host} port ${ep.port} as ${ep.user}`;
  if (/does not exist/.test(stderr) && /runuser/.test(stderr))
    throw new OpdError(
      'backend-unavailable',
      `PostgreSQL: there is no system user ${ep.user} to connect as: ${tail(stderr, 2)}`,
      {
        hint: 'install the postgresql package or set --pg-user / OPD_PG_USER to the superuser that peer authentication maps',
      },
    );
  if (/authentication failed|role .* does not exist|no pg_hba.conf entry|permission denied/i.test(stderr))
    throw new OpdError('permission', `PostgreSQL refused the superuser connection (${where}): ${tail(stderr, 2)}`, {
      hint: 'opd connects over the local socket as the superuser with peer authentication: run opd as root, or set --pg-user to a superuser that pg_hba.conf admits on the socket',
    });
  throw new OpdError(
    /starting up|shutting down/.test(stderr) ? 'backend-busy' : 'backend-unavailable',
    `PostgreSQL is not reachable on ${where}: ${tail(stderr, 3) || `psql exit ${r.exitCode}`}`,
    {
      hint: 'start PostgreSQL (systemctl start postgresql) or point --pg-host (socket directory) / --pg-port (env OPD_PG_HOST, OPD_PG_PORT) at it',
    },
  );
};

/** The MariaDB/MySQL client: mysql as root over the socket. */
export const mysql: SqlClient = async (settings, sql, secrets = [], timeout = TUNABLES.sqlMs, apply) => {
  const ep = myEndpoint(settings);
  const args = [
    '--protocol=SOCKET',
    `--socket=${ep.socket}`,
    `--user=${ep.user}`,
    '--batch',
    '--raw',
    '--skip-column-names',
    '--default-character-set=utf8mb4',
    `--connect-timeout=${TUNABLES.sqlConnectS}`,
  ];
  const r = await door(apply, 'mysql', args, {
    input: sql,
    cwd: '/',
    timeout,
    okCodes: [0, 1],
    backend: 'MariaDB/MySQL',
    installHint: 'apt-get install mariadb-client',
  });
  const stderr = scrub(r.stderr, secrets);
  if (r.exitCode === 0) return { ok: true, stdout: r.stdout };
  const code = Number(/ERROR (\d+)/.exec(stderr)?.[1] ?? 0);
  const where = `socket ${ep.socket} as ${ep.user}`;
  if (code === 1045 || code === 1698)
    throw new OpdError('permission', `MariaDB/MySQL refused the connection (${where}): ${tail(stderr, 2)}`, {
      hint: 'opd connects over the socket as root with unix_socket authentication: run opd as root, or set --mysql-user (env OPD_MYSQL_USER) and give its password in ~/.my.cnf',
    });
  if (code >= 2000 || code === 0)
    throw new OpdError(
      'backend-unavailable',
      `MariaDB/MySQL is not reachable on ${where}: ${tail(stderr, 3) || 'mysql exit 1'}`,
      {
        hint: 'start MariaDB (systemctl start mariadb) or point --mysql-socket (env OPD_MYSQL_SOCKET) at its socket',
      },
    );
  return {
    ok: false,
    stdout: r.stdout,
    error: tail(stderr.replace(/^ERROR (\d+) \(([0-9A-Z]+)\) at line \d+: /gm, 'ERROR $1 ($2): ')),
  };
};

type Runner = (sql: string, secrets: string[]) => Promise<SqlResult>;

/** An engine's read: its part of the section, with the members `named` in each of its two collections, or all of one (`all`). */
export type EngineRead = (settings: Settings, desired: Obj, named: string[][], all: boolean[]) => Promise<Obj>;

/** One read query whose answer is one JSON value: `what` names the read in errors. */
export async function queryJson<T>(client: SqlClient, settings: Settings, sql: string, what: string): Promise<T> {
  const r = await client(settings, sql);
  if (!r.ok) throw new OpdError('backend-failed', `${what} failed: ${r.error}`);
  try {
    return JSON.parse(r.stdout.trim()) as T;
  } catch {
    throw new OpdError('bug', `${what}: could not parse the JSON that the client returned`);
  }
}

interface Rendered {
  sql: string[];
  secrets: string[];
}

/**
 * Apply changes in one client process: each change's statements followed by a marker, the
 * script stops at the first error. Changes before it are done, the failing one failed, and the
 * rest run again in a new process (the batch holds no change that depends on another).
 */
export async function applyScripted<D>(
  changes: Change<D>[],
  render: (c: Change<D>) => Rendered,
  mark: (i: number) => string,
  runner: Runner,
  what: string,
): Promise<ChangeResult[]> {
  const results: (ChangeResult | undefined)[] = changes.map(() => undefined);
  let todo = changes.map((_, i) => i);
  while (todo.length) {
    const parts: string[] = [];
    const secrets: string[] = [];
    for (const i of todo) {
      const r = render(changes[i]);
      parts.push(...r.sql, mark(i));
      secrets.push(...r.secrets);
    }
    let res: SqlResult;
    try {
      res = await runner(parts.join('\n') + '\n', secrets);
    } catch (err) {
      // a script cut short may have done part of its work: running it again is not safe
      if (err instanceof OpdError && /timed out/.test(err.message))
        throw new OpdError('backend-failed', `${what}: ${err.message}; some of these changes may have been applied`, {
          hint: 'run opd apply again: it re-reads the server and plans what is left',
        });
      throw err;
    }
    const done = new Set<number>();
    for (const m of res.stdout.matchAll(/^opd-mark-(\d+)$/gm)) done.add(Number(m[1]));
    for (const i of todo) if (done.has(i)) results[i] = { address: changes[i].address, status: 'ok' };
    if (res.ok) {
      for (const i of todo) results[i] ??= { address: changes[i].address, status: 'ok' };
      break;
    }
    const failed = todo.find((i) => !done.has(i));
    if (failed === undefined) break;
    const c = changes[failed];
    results[failed] = {
      address: c.address,
      status: 'failed',
      error: new OpdError('backend-failed', `${what}: ${scrub(res.error ?? 'the statement failed', secrets)}`, {
        address: c.address,
        hint: hintFor(res.error ?? ''),
      }),
    };
    // the core hands over only changes whose dependencies are done: the rest run again
    todo = todo.filter((i) => !results[i]);
  }
  return results.map(
    (r, i) =>
      r ?? {
        address: changes[i].address,
        status: 'failed',
        error: new OpdError('bug', `no result for ${changes[i].address}`),
      },
  );
}

function hintFor(err: string): string | undefined {
  if (/being accessed by other users|database .* is being accessed/i.test(err))
    return 'disconnect the clients of the database (stop the service that uses it) and apply again';
  if (/cannot be dropped because some objects depend on it/i.test(err))
    return 'the role still owns objects or holds privileges: reassign or drop them (REASSIGN OWNED / DROP OWNED), or revoke its grants first';
  if (/does not exist/i.test(err)) return 'create what it refers to first (name it in the document, or add depends_on)';
  if (/incompatible with the encoding|does not match locale/i.test(err))
    return 'choose an encoding that matches the server locale (UTF8 for a UTF-8 locale)';
  if (/Can't find any matching row in the user table/i.test(err))
    return 'create the user first: name it under mysql_users';
  return undefined;
}
