/**
 * The only door to processes, in two halves: `runRead` for commands that only look, and
 * `runMutate`, which needs the ApplyContext of a run (so the read/diff path cannot change the
 * host by construction) and honours its AbortSignal. argv arrays, never a shell; a timeout
 * (src/core/tunables.ts); errors that name the command, its exit code and the tail of its
 * stderr. Counts spawned processes for benchmarks. No argument may hold a secret value.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { OpdError, abortedError } from './core/errors.js';
import { assertApplyContext, type ApplyContext } from './core/plugin.js';
import { TUNABLES } from './core/tunables.js';
import { CallCounter } from './core/counter.js';
import { secretArgIndex } from './core/secrets.js';

/**
 * A secret never reaches an argv: every local user reads a process's arguments in
 * /proc/PID/cmdline. Refused before anything is started (the environment or stdin carry secrets).
 */
function refuseSecretArgv(cmd: string, args: readonly string[], backend?: string): void {
  const i = secretArgIndex([cmd, ...args]);
  if (i < 0) return;
  throw new OpdError(
    'refused',
    `${backend ?? cmd}: argument ${i} of ${cmd} holds a secret value, and every local user can read a process's arguments (/proc/PID/cmdline); it was not run`,
    {
      hint: 'give the secret to the command in its environment (exec: env:) or on its standard input, never in its argv',
    },
  );
}

export interface ExecOptions {
  /** Milliseconds; default TUNABLES.execMs. */
  timeout?: number;
  input?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Exit codes that are not failures (default [0]). */
  okCodes?: number[];
  /** Human name of the backend, for error messages ("ovs-vsctl", "lxc"). */
  backend?: string;
  /** Hint attached when the command is missing. */
  installHint?: string;
  /**
   * The command acts on the host as a whole (a package manager and the maintainer scripts it
   * runs): when opd runs as a sandboxed systemd service (see inheritedSandbox), it runs as a
   * transient unit of the service manager instead, outside opd's sandbox, its stdio piped back.
   * Only `env` reaches it (never put a secret there: a transient unit's environment is public).
   */
  outsideSandbox?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

const stats = new CallCounter();

export function execStats(): { spawned: number; byCommand: Record<string, number> } {
  return { spawned: stats.total, byCommand: stats.names() };
}

export function resetExecStats(): void {
  stats.reset();
}

function tail(s: string, n = 8): string {
  const lines = s.trim().split('\n');
  return lines.slice(-n).join('\n');
}

export function quoteArgv(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** The read door: a command that only looks at the host (reads, show, doctor, guards). */
export function runRead(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return spawnOnce(cmd, args, opts);
}

/** The mutate door: a command that changes the host, only inside an apply (the core's ApplyContext); stopped when ctx.signal fires. */
export function runMutate(ctx: ApplyContext, cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  assertApplyContext(ctx);
  if (opts.outsideSandbox && inheritedSandbox())
    return spawnOnce('systemd-run', transient(cmd, args, opts), opts, ctx.signal);
  return spawnOnce(cmd, args, opts, ctx.signal);
}

let sandboxed: boolean | undefined;
/**
 * Whether this process runs as a systemd service under restrictions its children would inherit
 * (no_new_privs, a seccomp filter: packaging/systemd/opd.service sets both). Then what must run
 * with the host's full privileges (containers, package managers) is started by the service
 * manager itself, in a clean execution context (`systemd-run`), never as opd's own child.
 */
export function inheritedSandbox(): boolean {
  if (sandboxed === undefined) {
    let status = '';
    try {
      status = readFileSync('/proc/self/status', 'utf8');
    } catch {
      /* no procfs: not a service of ours */
    }
    sandboxed =
      !!process.env.INVOCATION_ID &&
      existsSync('/run/systemd/system') &&
      (/^NoNewPrivs:\s*1$/m.test(status) || /^Seccomp:\s*[12]$/m.test(status));
  }
  return sandboxed;
}

/** systemd-run's argv that runs `cmd args` as a transient service and waits for it, stdio piped. */
function transient(cmd: string, args: string[], opts: ExecOptions): string[] {
  const env = Object.entries(opts.env ?? {}).filter(([, v]) => v !== undefined) as [string, string][];
  return [
    '--quiet',
    '--collect',
    '--wait',
    '--pipe',
    '--service-type=exec',
    `--description=opd: ${quoteArgv([cmd, ...args]).slice(0, 200)}`,
    // the unit ends with opd's wait for it: the door's timeout bounds both
    `--property=RuntimeMaxSec=${Math.ceil((opts.timeout ?? TUNABLES.execMs) / 1000)}`,
    ...(opts.cwd ? [`--working-directory=${opts.cwd}`] : []),
    ...env.map(([k, v]) => `--setenv=${k}=${v}`),
    '--',
    cmd,
    ...args,
  ];
}

async function spawnOnce(cmd: string, args: string[], opts: ExecOptions, signal?: AbortSignal): Promise<ExecResult> {
  refuseSecretArgv(cmd, args, opts.backend);
  stats.count(cmd);
  const okCodes = opts.okCodes ?? [0];
  const display = quoteArgv([cmd, ...args]);
  let r;
  // execa's own start-up (streams, colours, signals) is paid by the commands that run a process
  const { execa } = await import('execa');
  try {
    r = await execa(cmd, args, {
      shell: false,
      reject: false,
      timeout: opts.timeout ?? TUNABLES.execMs,
      ...(signal ? { cancelSignal: signal } : {}),
      input: opts.input,
      env: opts.env,
      extendEnv: true,
      cwd: opts.cwd,
      stripFinalNewline: false,
      maxBuffer: 256 * 1024 * 1024,
    });
  } catch (err) {
    throw new OpdError('backend-failed', `could not run ${display}: ${(err as Error).message}`, { cause: err });
  }
  const code = (r as { code?: string }).code;
  if (code === 'ENOENT' || (r.failed && r.exitCode === undefined && /ENOENT/.test(String(r.message)))) {
    throw new OpdError('backend-unavailable', `${cmd} is not installed (needed by ${opts.backend ?? cmd})`, {
      hint: opts.installHint ?? `install the package that provides ${cmd}`,
    });
  }
  if (r.timedOut) {
    throw new OpdError('backend-busy', `${display} timed out after ${opts.timeout ?? TUNABLES.execMs} ms`);
  }
  if (r.isCanceled) throw abortedError(signal, display);
  const exitCode = r.exitCode ?? -1;
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  if (!okCodes.includes(exitCode)) {
    const why = r.signal ? `killed by ${r.signal}` : `exit ${exitCode}`;
    throw new ExecFailure(
      display,
      exitCode,
      stderr,
      `${display} failed (${why}): ${tail(stderr || stdout) || 'no output'}`,
    );
  }
  return { stdout, stderr, exitCode };
}

/** A command that ran and failed. Plugins translate it into their own words when they can. */
export class ExecFailure extends OpdError {
  constructor(
    readonly command: string,
    readonly exitCode_: number,
    readonly stderr: string,
    message: string,
  ) {
    super('backend-failed', message);
  }
}

/**
 * A long-running child (event streams: `ovsdb-client monitor`, `virsh event --loop`): calls
 * onLine for each stdout line; dispose() ends exactly this child, by its PID.
 */
export function spawnLines(
  cmd: string,
  args: string[],
  onLine: (line: string) => void,
  log?: { warn: (o: object, m: string) => void },
  opts: { env?: Record<string, string | undefined> } = {},
): { dispose(): Promise<void>; pid?: number } {
  refuseSecretArgv(cmd, args);
  stats.count(cmd);
  // node's spawn: an event stream needs none of execa, whose start-up is not paid here
  const child = spawn(cmd, args, {
    shell: false,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) onLine(line);
    }
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-500)));
  let stopping = false;
  const ended = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      if (!stopping) log?.warn({ cmd, err: err.message }, `${cmd} event stream ended`);
      resolve();
    });
    child.once('close', (exitCode) => {
      if (!stopping) log?.warn({ cmd, exitCode, stderr }, `${cmd} event stream ended`);
      resolve();
    });
  });
  return {
    pid: child.pid,
    async dispose() {
      stopping = true;
      if (child.pid && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await ended;
    },
  };
}

/**
 * Start a process that outlives this one (confirm-or-revert's deadline keeper): its own
 * session (setsid, so a hang-up of the invoking terminal or SSH session does not reach it),
 * no stdin, stdout and stderr appended to `logFile`. Returns its PID.
 */
export async function spawnDetached(
  cmd: string,
  args: string[],
  opts: { logFile: string; env?: Record<string, string | undefined> },
): Promise<number> {
  const { spawn } = await import('node:child_process');
  const { openSync, closeSync } = await import('node:fs');
  refuseSecretArgv(cmd, args);
  stats.count(cmd);
  const fd = openSync(opts.logFile, 'a', 0o600);
  try {
    const child = spawn(cmd, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...opts.env },
      shell: false,
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) =>
        reject(
          new OpdError('backend-failed', `could not start ${quoteArgv([cmd, ...args])}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    return pid;
  } finally {
    closeSync(fd);
  }
}
