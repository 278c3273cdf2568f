/**
 * opd's command line. main() returns the exit code; only bin/opd.js sets it. No stack traces:
 * every error is an OpdError with a message, a hint and a distinct exit code.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { OpdError, EXIT, toOpdError } from '../core/errors.js';
import { flushOut, takeExit, wroteStdout } from './common.js';
import { scrub } from '../core/secrets.js';
import { enableProfile, mark, profileReport, profiling } from '../core/profile.js';

export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
}

/** A command's module: it exports `<name in camelCase>Command()` (show-plan: showPlanCommand). */
type Loader = () => Promise<object>;

/** Every subcommand: name, one line of help, its module (loaded only when that command runs). */
const COMMANDS: [string, string, Loader][] = [
  ['validate', 'check a state document (exit 65 when invalid)', () => import('./validate.js')],
  [
    'diff',
    'show the ordered plan; never changes anything (exit 2 when changes are pending)',
    () => import('./diff.js'),
  ],
  ['apply', 'converge the host, verify, record in the audit trail', () => import('./apply.js')],
  ['show-plan', 'print a plan saved by opd diff --out as opd diff prints it', () => import('./show-plan.js')],
  ['confirm', 'confirm a run of opd apply --confirm (else it reverts at its deadline)', () => import('./confirm.js')],
  ['show', "print the host's current state as an opd document", () => import('./show.js')],
  ['graph', 'print the dependency graph as DOT', () => import('./graph.js')],
  ['audit', 'verify or print the hash-chained audit trail', () => import('./audit.js')],
  ['daemon', 'reconcile continuously under systemd (Type=notify), with a D-Bus API', () => import('./daemon.js')],
  ['status', 'how the running daemon sees the host (over D-Bus)', () => import('./status.js')],
  ['doctor', 'which backends are reachable, and why not', () => import('./doctor.js')],
  ['facts', "this host's facts, which documents use as ${fact.NAME} and when:", () => import('./facts.js')],
  ['fleet', 'many hosts from etcd: put, diff, status, rollout, enroll', () => import('./fleet.js')],
  [
    'completion',
    'print the shell completion script for bash, zsh or fish (commands, flags, plugins, addresses)',
    () => import('./completion.js'),
  ],
];

async function load(name: string, module: Loader): Promise<Command> {
  const factory = `${name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())}Command`;
  const make = (await module()) as Record<string, unknown>;
  if (typeof make[factory] !== 'function') throw new OpdError('bug', `src/cli/${name}.ts exports no ${factory}()`);
  return (make[factory] as () => Command)();
}

/** The whole command line with every command loaded: what the man pages, docs and completions are made from. */
export async function commandTree(): Promise<Command> {
  const p = program();
  for (const [n, , l] of COMMANDS) p.addCommand(await load(n, l));
  return p;
}

function program(): Command {
  const p = new Command('opd')
    .description('opd: declarative desired-state reconciler for Linux virtualization hosts')
    .version(version(), '-V, --version')
    .option('--profile', 'print where the time went, phase by phase (wall and CPU ms), on stderr at the end')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Exit codes: 0 ok · 1 failed (a change, verification or the audit chain) · 2 changes pending (diff)
            3 stale saved plan (opd apply plan.json: the document or a planned resource changed)
            64 usage · 65 invalid document · 69 backend unavailable · 70 bug · 74 audit trail I/O (disk full)
            75 lock busy · 77 permission · 130/143 stopped by SIGINT/SIGTERM (in-flight changes recorded)
Examples:
  opd validate state.yaml
  opd diff state.yaml -o json
  opd apply state.yaml --rollback
  opd diff state.yaml --out plan.json && opd show-plan plan.json && opd apply plan.json
  opd apply state.yaml --confirm 120      # then, from any shell: opd confirm
  opd show --plugin ovs > current.yaml
  opd audit verify`,
    );
  return p;
}

/**
 * In JSON mode (`-o json`) an error is JSON on stdout too: format_version, error {kind, message,
 * hint, problems, exit_code}; unless the command already printed its JSON answer (a plan with
 * `unknown` resources, a failed verify's report): stdout stays one JSON document, the error is on
 * stderr and in the exit code.
 */
async function jsonError(argv: string[], io: { out?: (s: string) => void }, e: OpdError): Promise<void> {
  const { errorJSON, wantsJSON } = await import('./output.js');
  if (!wantsJSON(argv) || wroteStdout()) return;
  flushOut();
  (io.out ?? ((s: string) => process.stdout.write(s + '\n')))(scrub(JSON.stringify(errorJSON(e), null, 2)));
}

export async function main(
  argv: string[],
  io: { err: (s: string) => void; out?: (s: string) => void } = {
    err: (s) => {
      flushOut();
      process.stderr.write(s + '\n');
    },
  },
): Promise<number> {
  if (argv.includes('--profile') || process.env.OPD_PROFILE) enableProfile();
  const name = argv[2] === '--profile' ? argv[3] : argv[2];
  // the shell completion scripts ask here (src/cli/completion.ts): candidates, never an error
  if (name === '__complete') {
    const { completeMain, commandsDoc } = await import('./completion.js');
    try {
      const root = commandsDoc(version()) ?? (await import('./docs/reference.js')).describeCommand(await commandTree());
      return await completeMain(root, argv.slice(3), (s) => process.stdout.write(s + '\n'));
    } catch {
      return EXIT.ok;
    } finally {
      await (await import('../dbus.js')).closeBuses();
    }
  }
  const p = program();
  const entry = COMMANDS.find(([n]) => n === name);
  if (entry) p.addCommand(await load(entry[0], entry[2]));
  else for (const [n, d] of COMMANDS) p.command(n).description(d);
  mark('command module');
  p.exitOverride();
  p.configureOutput({ writeErr: (s) => io.err(s.trimEnd()) });
  const hook = (c: Command) => {
    c.exitOverride();
    c.configureOutput({ writeErr: (s) => io.err(s.trimEnd()) });
    for (const sub of c.commands) hook(sub);
  };
  hook(p);
  try {
    await p.parseAsync(argv);
    return takeExit();
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return EXIT.ok;
      await jsonError(argv, io, new OpdError('usage', err.message.replace(/^error: /, '')));
      return EXIT.usage;
    }
    const e = err instanceof OpdError ? err : toOpdError(err);
    io.err(scrub(e.format()));
    await jsonError(argv, io, e);
    if (e.kind === 'bug' && process.env.OPD_DEBUG) io.err(String((err as Error).stack));
    return e.exitCode;
  } finally {
    flushOut();
    await (await import('../dbus.js')).closeBuses();
    if (profiling()) {
      mark('output and close');
      for (const line of profileReport()) io.err(line);
    }
  }
}
