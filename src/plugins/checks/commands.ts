/**
 * Command checks (`checks.commands`): a guide's post-install checks (`kvm-ok`, `virsh list --all`,
 * `protoc --version`), each a read-only command whose exit status (and, optionally, output) says
 * whether the host is as the guide promises. Unlike `require`, they are not preconditions: a
 * check that does not hold is planned as a `check` change that runs after every other change of
 * the run (and after its depends_on), and fails the run when the command still says no; a check
 * that holds changes nothing. The command runs through the read door on every read (opd diff
 * too): it must only look.
 */
import type { Change, Edge, NormalizeContext, Obj, ResourceDiff } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import { OpdError } from '../../core/errors.js';
import { quoteArgv, runRead } from '../../exec.js';
import { TUNABLES } from './manifest.js';
import type { Command as CommandCheck } from './section.gen.js';

const ALL_CODES = Array.from({ length: 256 }, (_, i) => i);
const TAIL = 400;

/** What a command check found: undefined when it holds, else why not. */
export async function runCheck(spec: CommandCheck): Promise<string | undefined> {
  const argv = spec.argv;
  let r;
  try {
    r = await runRead(argv[0], argv.slice(1), {
      okCodes: ALL_CODES,
      env: spec.env,
      input: '',
      timeout: (spec.timeout ?? TUNABLES.checkCommandS) * 1000,
      backend: 'checks (command)',
    });
  } catch (e) {
    const err = e instanceof OpdError ? e : new OpdError('backend-failed', String(e));
    return err.kind === 'backend-unavailable' ? `${argv[0]} is not installed` : err.message;
  }
  const out = (r.stdout + r.stderr).trim();
  const last = out.length > TAIL ? '…' + out.slice(-TAIL) : out;
  const codes = spec.exit_codes ?? [0];
  if (!codes.includes(r.exitCode))
    return `exited ${r.exitCode}${last ? `: ${last.split('\n').slice(-3).join(' / ')}` : ''}`;
  if (spec.output !== undefined && !new RegExp(spec.output, 'm').test(r.stdout + r.stderr))
    return `its output does not match /${spec.output}/${last ? `: ${last.split('\n').slice(0, 3).join(' / ')}` : ' (no output)'}`;
  return undefined;
}

/** normalize: an output pattern that is not a regular expression is refused where it is written. */
export function normalizeCommands(commands: unknown, ctx: NormalizeContext): void {
  if (!isObj(commands)) return;
  for (const [n, c] of Object.entries(commands)) {
    if (!isObj(c) || typeof c.output !== 'string') continue;
    try {
      new RegExp(c.output, 'm');
    } catch (e) {
      ctx.refuse(
        `/plugins/checks/commands/${n}/output`,
        `not a regular expression: ${(e as Error).message}`,
        'write a JavaScript regular expression (escape ( ) [ ] . * + ? with a backslash to match them literally)',
      );
    }
  }
}

/** Read: every check echoes the document; the ones that do not hold are faults (address → why). */
export async function readCommands(
  named: Record<string, CommandCheck>,
): Promise<{ commands: Record<string, CommandCheck>; failures: Record<string, string> }> {
  const commands: Record<string, CommandCheck> = {};
  const failures: Record<string, string> = {};
  const entries = Object.entries(named).sort(([a], [b]) => (a < b ? -1 : 1));
  const found = await Promise.all(entries.map(([, spec]) => (isObj(spec) ? runCheck(spec) : undefined)));
  entries.forEach(([n, spec], i) => {
    commands[n] = spec;
    if (found[i] !== undefined) failures[`checks/commands/${n}`] = found[i]!;
  });
  return { commands, failures };
}

export interface CheckChangeData {
  name: string;
  spec: CommandCheck;
}

/** A command check that does not hold: run it again after everything else (apply), fail when it still says no. */
export function planCommand(d: ResourceDiff): Change<CheckChangeData>[] {
  if (!d.desired || !d.faults) return [];
  const spec = d.desired as unknown as CommandCheck;
  return [
    {
      address: d.address,
      resource: d.address,
      plugin: 'checks',
      action: 'check',
      summary: quoteArgv(spec.argv) + (spec.output !== undefined ? ` (output /${spec.output}/)` : ''),
      reason: `now: ${Object.values(d.faults).join('; ')}`,
      ops: d.ops,
      data: { name: d.name, spec },
    },
  ];
}

/** After every other section's changes (a post-install check looks at what the run installed). */
export function commandEdges(desired: { commands?: Record<string, unknown> }, all: Record<string, Obj>): Edge[] {
  const others = Object.keys(all).filter((p) => p !== 'checks');
  return Object.keys(desired.commands ?? {}).flatMap((n) =>
    others.map((p) => ({ from: `checks/commands/${n}`, to: p, kind: 'post-check' })),
  );
}
