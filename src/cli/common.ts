/** Shared CLI plumbing: options, settings, logger, output. Library code never exits. */
import { Command, Option } from 'commander';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createRequire } from 'node:module';
import type { Finding } from '../core/plugin.js';
import { OpdError, formatProblem, type Problem } from '../core/errors.js';
import { scrub } from '../core/secrets.js';
import { DEFAULT_VARS_FILE, type VarSources } from '../core/params.js';
import type { Excluded } from '../core/when.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

// Standard output is written in chunks: the lines of one turn of the event loop (10,000 outcome
// lines of one apply wave) go out in one write, not one write each. A line on stderr first
// writes what stdout holds, so that the two keep their order on a terminal.
let pendingOut = '';
let flushScheduled = false;
let wroteOut = false;

/**
 * Whether the command wrote anything to stdout: in JSON mode a command that printed its own JSON
 * (a plan with `unknown`, a verify report) before failing leaves stdout one JSON document.
 */
export function wroteStdout(): boolean {
  return wroteOut;
}

/** Write what stdout holds now (main() calls it before it returns). */
export function flushOut(): void {
  if (!pendingOut) return;
  const s = pendingOut;
  pendingOut = '';
  process.stdout.write(s);
}

// every line opd prints passes the secret scrubber (values of secret parameters and from_file texts)
export const stdio: Io = {
  out: (s) => {
    wroteOut = true;
    pendingOut += scrub(s.endsWith('\n') ? s : s + '\n');
    if (pendingOut.length > 1 << 16) flushOut();
    else if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        flushOut();
      });
    }
  },
  err: (s) => {
    flushOut();
    process.stderr.write(scrub(s.endsWith('\n') ? s : s + '\n'));
  },
};

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** --var / --vars: parameter values for the document's `params:` (see src/core/params.ts). */
export function addVarOptions(cmd: Command): Command {
  cmd.addOption(
    new Option('--var <name=value>', 'set a document parameter (repeatable; env OPD_VAR_<name>)').argParser(collect),
  );
  cmd.addOption(
    new Option(
      '--vars <file>',
      `parameter values from a YAML/JSON map (repeatable; a later file wins; after them the environment, then the host's vars file ${DEFAULT_VARS_FILE} when it exists: env OPD_VARS_FILE moves it, empty turns it off)`,
    ).argParser(collect),
  );
  return cmd;
}

export function varsFrom(opts: Record<string, unknown>): VarSources {
  return {
    vars: (opts.var as string[] | undefined) ?? [],
    varsFiles: (opts.vars as string[] | undefined) ?? [],
    env: process.env,
    defaultVarsFile: process.env.OPD_VARS_FILE ?? DEFAULT_VARS_FILE,
  };
}

export const AUDIT_LOG_DEFAULT = '/var/lib/opd/audit.jsonl';
export const AUDIT_KEY_DEFAULT = '/etc/opd/audit.key';

export function addAuditOptions(cmd: Command): Command {
  cmd.addOption(new Option('--audit-log <path>', `audit trail (env OPD_AUDIT_LOG; default ${AUDIT_LOG_DEFAULT})`));
  cmd.addOption(
    new Option(
      '--audit-key <file>',
      `HMAC key sealing the audit head (env OPD_AUDIT_KEY; default ${AUDIT_KEY_DEFAULT} when it exists)`,
    ),
  );
  return cmd;
}

/** One option of a table: `[flags, help]`, `[flags, help, default]`, or an Option that needs more (choices, a parser). */
export type OptionRow = [flags: string, help: string, dflt?: string] | Option;

/** Add a command's options from a table, in order (the table is the command's --help). */
export function addOptions(cmd: Command, rows: OptionRow[]): Command {
  for (const r of rows) {
    if (r instanceof Option) cmd.addOption(r);
    else {
      const o = new Option(r[0], r[1]);
      cmd.addOption(r[2] === undefined ? o : o.default(r[2]));
    }
  }
  return cmd;
}

export function outputOption(choices: string[], dflt: string): Option {
  return new Option('-o, --output <format>', 'output format').choices(choices).default(dflt);
}

/**
 * The audit trail and its key: --audit-log/--audit-key (OPD_AUDIT_LOG/OPD_AUDIT_KEY), else under
 * --root (OPD_ROOT) when one is given — a run against a root leaves the host's own trail alone —
 * else /var/lib/opd/audit.jsonl and /etc/opd/audit.key.
 */
export function auditPaths(opts: Record<string, unknown>): { log: string; key: string } {
  const r = (opts.root as string | undefined) || process.env.OPD_ROOT || undefined;
  const under = (p: string) => (r ? join(r, p) : p);
  return {
    log: (opts.auditLog as string | undefined) ?? process.env.OPD_AUDIT_LOG ?? under(AUDIT_LOG_DEFAULT),
    key: (opts.auditKey as string | undefined) ?? process.env.OPD_AUDIT_KEY ?? under(AUDIT_KEY_DEFAULT),
  };
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** One pino JSON line as a line for people: `time LEVEL message key=value …`. */
export function humanLine(json: string): string {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, ...rest } = e;
  const kv = Object.entries(rest).map(
    ([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`,
  );
  return `${String(time ?? '')} ${(LEVELS[level as number] ?? String(level)).padEnd(5)} ${String(msg ?? '')}${kv.length ? ' ' + kv.join(' ') : ''}\n`;
}

const LEVEL_VALUES: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

/**
 * The logger of a command: pino, created on the first message at or above the level (a command
 * that logs nothing, as `opd diff` at the default level, never loads pino).
 */
export async function makeLogger(opts: Record<string, unknown>): Promise<Logger> {
  const level = (opts.logLevel as string | undefined) ?? process.env.OPD_LOG_LEVEL ?? 'warn';
  const format = (opts.logFormat as string | undefined) ?? process.env.OPD_LOG_FORMAT ?? 'human';
  if (format !== 'human' && format !== 'json')
    throw new OpdError('usage', `--log-format must be human or json, got ${JSON.stringify(format)}`);
  const threshold = LEVEL_VALUES[level];
  if (threshold === undefined) return realLogger(level, format); // pino says what is wrong with it
  let real: Logger | undefined;
  const method =
    (name: keyof typeof LEVEL_VALUES) =>
    (...args: unknown[]): void => {
      if (LEVEL_VALUES[name] < threshold) return;
      real ??= realLoggerSync(level, format);
      (real[name as 'info'] as (...a: unknown[]) => void)(...args);
    };
  return {
    level,
    trace: method('trace'),
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    fatal: method('fatal'),
    silent: () => undefined,
    isLevelEnabled: (l: string) => (LEVEL_VALUES[l] ?? Infinity) >= threshold,
  } as unknown as Logger;
}

async function realLogger(level: string, format: string): Promise<Logger> {
  return realLoggerSync(level, format);
}

function realLoggerSync(level: string, format: string): Logger {
  // required on first use, outside the bundle (pino is CommonJS)
  const { pino } = createRequire(import.meta.url)('pino') as typeof import('pino');
  const options = { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  // log lines pass the secret scrubber too (values of secret parameters and from_file texts)
  const out = pino.destination({ fd: 2, sync: true });
  if (format === 'json') return pino(options, { write: (s: string) => out.write(scrub(s)) });
  return pino(options, { write: (s: string) => out.write(scrub(humanLine(s))) });
}

export function parseSeconds(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new OpdError('usage', `${name} must be a number of seconds, got ${JSON.stringify(v)}`);
  return n;
}

let lastExit = 0;

/** Wrap a command action that returns its exit code (commander actions return void). */
export function act<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    lastExit = await fn(...args);
  };
}

export function takeExit(): number {
  const c = lastExit;
  lastExit = 0;
  return c;
}

/** `--only net,firewall`: the plugins a run is restricted to (undefined: all). */
export function onlyOption(): Option {
  return new Option(
    '--only <plugins>',
    'restrict the run to these plugins (comma-separated, e.g. ovs,net,firewall,sysctl: what opd-boot.service converges at boot)',
  );
}

/** `--target ADDRESS…`: plan (and apply) only these resources and what they depend on. */
export function targetOption(): Option {
  return new Option(
    '--target <address...>',
    'only these resources and what they depend on (an address such as files/paths/etc/x.conf or ovs/bridges/br0, or a prefix such as ovs); repeatable',
  );
}

export function parseOnly(v: unknown): string[] | undefined {
  if (typeof v !== 'string') return undefined;
  const names = [
    ...new Set(
      v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    ),
  ].sort();
  if (!names.length) throw new OpdError('usage', '--only needs at least one plugin name');
  return names;
}

/** Accepted-but-unacted fields and read-as notes (op-dbus forms): one line each on stderr. */
export function printWarnings(warnings: readonly Problem[], io: Io = stdio): void {
  for (const w of warnings) io.err(`opd: warning: ${formatProblem(w)}`);
}

/** Recommendations the host does not meet (checks' `recommend:`): warnings that block nothing. */
export function printAdvisories(advisories: readonly Finding[] | undefined, io: Io = stdio): void {
  for (const a of advisories ?? []) io.err(`opd: warning: ${a.address}: not as recommended: ${a.message}`);
}

/**
 * What opd says about a prepared document before its plan: warnings (forms accepted but not acted
 * on), and the resources whose `when:` does not hold on this host (not managed here).
 */
export function printNotes(
  prep: {
    warnings: readonly Problem[];
    excluded: readonly Excluded[];
    loaded: { file: string; locate: (p: string, atKey?: boolean) => { line: number; col: number } | undefined };
  },
  io: Io = stdio,
): void {
  printWarnings(prep.warnings, io);
  for (const e of prep.excluded) {
    const pos = prep.loaded.locate(e.pointer, true);
    io.err(`opd: not on this host: ${prep.loaded.file}:${pos?.line ?? 1}:${pos?.col ?? 1}: ${e.address}: ${e.reason}`);
  }
}
