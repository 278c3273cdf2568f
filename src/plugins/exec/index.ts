/**
 * exec: run-once steps of the install guides (`rvd_back --add-user`, migrations, `kvm-ok`), as
 * Puppet's exec and Ansible's command-with-creates have them.
 *
 * - argv only; a shell only when the document asks for one (`shell: "…"` runs /bin/sh -c).
 * - A guard is mandatory (the schema refuses a command without one): `creates` (a path that the
 *   command makes), `unless` (a command whose success means "already done"), `onlyif` (a
 *   command whose failure means "nothing to do"), or `refresh_on` (run only when one of these
 *   resources changed in this run: Puppet's refreshonly/subscribe).
 * - read: a command whose guards hold reads back exactly as the document says (no diff); one
 *   that must run reads as absent, so it is planned as `run`. After the run, verification reads
 *   again: a command that did not make its guard hold (creates still missing) fails
 *   verification instead of running again and again unnoticed.
 * - `stdin` (written to the command's standard input, then closed: the answers of a command that
 *   asks, such as Ravada's `rvd_back --add-user`; a secret field), `user` (runuser -u), `cwd`,
 *   `env`, `timeout` (seconds, default 300; never retried),
 *   `returns` (success exit codes). stdout and stderr go into the audit trail (`output`, the
 *   last 64 KiB), with the values of secret parameters scrubbed by the core.
 *
 * Guard commands run on every read, `opd diff` included: they must only look, never change.
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest, { TUNABLES } from './manifest.js';
import { existsSync, readFileSync } from 'node:fs';
import type { ApplyContext, Change, ChangeResult, Edge, Obj, Plugin, ResourceDiff } from '../../core/plugin.js';
import type { ExecDoc, Command } from './section.gen.js';
import { assertApplyContext, stopRequested } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { quoteArgv, runRead, runMutate } from '../../exec.js';
import { registerSecretValues } from '../../core/secrets.js';

/** The section's types, generated from schema/exec.schema.json (npm run gen:types). */
export type ExecSection = ExecDoc & Obj;
export type CommandSpec = Command;

export const DEFAULT_TIMEOUT_S = TUNABLES.execStepS;
export const GUARD_TIMEOUT_MS = TUNABLES.execGuardMs;
export const OUTPUT_MAX = 64 * 1024;
const ALL_CODES = Array.from({ length: 256 }, (_, i) => i);

/** The argv that runs the command (a shell only when asked), wrapped in runuser for `user`. */
export function commandArgv(spec: CommandSpec, argv: string[] | undefined = spec.argv): string[] {
  const base = argv ?? (spec.shell !== undefined ? ['/bin/sh', '-c', spec.shell] : []);
  if (!spec.user) return base;
  return ['runuser', '-u', spec.user, '--', ...base];
}

export function shown(spec: CommandSpec): string {
  return spec.argv ? quoteArgv(spec.argv) : `sh -c ${JSON.stringify(spec.shell)}`;
}

function userCheck(spec: CommandSpec): void {
  if (spec.user && process.getuid?.() !== 0 && spec.user !== currentUser())
    throw new OpdError('permission', `running as user ${spec.user} needs root (runuser)`, {
      hint: 'run opd as root, or drop `user:`',
    });
}

function currentUser(): string | undefined {
  try {
    const uid = process.getuid?.();
    for (const l of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = l.split(':');
      if (Number(f[2]) === uid) return f[0];
    }
  } catch {
    /* unknown */
  }
  return undefined;
}

/** Exit code of a guard command (read door: no change to the host is allowed there). */
async function guard(spec: CommandSpec, argv: string[]): Promise<number> {
  userCheck(spec);
  const full = commandArgv(spec, argv);
  const r = await runRead(full[0], full.slice(1), {
    okCodes: ALL_CODES,
    cwd: spec.cwd,
    env: spec.env,
    input: '', // a guard that asks gets end of input at once, never the step's stdin
    timeout: GUARD_TIMEOUT_MS,
    backend: 'exec guard',
  });
  return r.exitCode;
}

/** Why the command must run, or undefined when its guards say it has run. */
export async function needsRun(spec: CommandSpec): Promise<string | undefined> {
  if (spec.creates !== undefined && existsSync(spec.creates)) return undefined;
  if (spec.unless && (await guard(spec, spec.unless)) === 0) return undefined;
  if (spec.onlyif && (await guard(spec, spec.onlyif)) !== 0) return undefined;
  const why: string[] = [];
  if (spec.creates !== undefined) why.push(`${spec.creates} does not exist`);
  if (spec.unless) why.push(`unless ${quoteArgv(spec.unless)} failed`);
  if (spec.onlyif) why.push(`onlyif ${quoteArgv(spec.onlyif)} succeeded`);
  return why.join(', ');
}

function strip(spec: CommandSpec): CommandSpec {
  const { depends_on: _d, ...rest } = spec;
  return rest;
}

const matches = (sub: string, changed: string) =>
  changed === sub || changed.startsWith(sub + '/') || sub.startsWith(changed + '/');

function runChange(
  name: string,
  spec: CommandSpec,
  reason: string,
  action: 'run' | 'refresh',
  ops?: ResourceDiff['ops'],
): Change<ExecChangeData> {
  const addr = `exec/commands/${name}`;
  return {
    address: addr,
    resource: addr,
    plugin: 'exec',
    action,
    summary: shown(spec) + (spec.user ? ` (as ${spec.user})` : ''),
    reason,
    ...(ops ? { ops } : {}),
    data: { name, spec, refresh: action === 'refresh' },
  };
}

async function execute(ctx: ApplyContext, name: string, spec: CommandSpec, refresh: boolean): Promise<ChangeResult> {
  assertApplyContext(ctx);
  const address = `exec/commands/${name}`;
  try {
    userCheck(spec);
    // a refresh still respects the command's own guards (Puppet: refreshonly with creates)
    if (refresh && (spec.creates !== undefined || spec.unless || spec.onlyif) && (await needsRun(spec)) === undefined) {
      return { address, status: 'ok', output: '(not run: its guard holds)' };
    }
    // coreutils timeout kills the step's whole process group (a shell's children too), exit 124
    const secs = spec.timeout ?? DEFAULT_TIMEOUT_S;
    const argv = ['timeout', `--kill-after=${TUNABLES.execStepKillAfterS}`, `${secs}s`, ...commandArgv(spec)];
    let r;
    try {
      r = await runMutate(ctx, argv[0], argv.slice(1), {
        okCodes: ALL_CODES,
        cwd: spec.cwd,
        env: spec.env,
        // the answers it asks for (a password twice), then end of input; without stdin: nothing (not opd's own)
        input: spec.stdin ?? '',
        timeout: secs * 1000 + TUNABLES.execStepGraceMs,
        backend: `exec/commands/${name}`,
      });
    } catch (err) {
      const e = toOpdError(err);
      // a step is never retried by the core: it may not be safe to run twice
      throw new OpdError(
        e.kind === 'backend-unavailable' ? 'backend-unavailable' : 'backend-failed',
        e.message.replace(/^could not run /, 'could not run '),
        { hint: e.hint, address },
      );
    }
    const output = tailOf(r.stdout + (r.stderr && r.stdout && !r.stdout.endsWith('\n') ? '\n' : '') + r.stderr);
    if (r.exitCode === 124 || r.exitCode === 137)
      return {
        address,
        status: 'failed',
        output,
        error: new OpdError('backend-failed', `${shown(spec)} timed out after ${secs} s (killed)`, {
          address,
          hint: 'raise `timeout:` or fix what the step waits for',
        }),
      };
    const ok = (spec.returns ?? [0]).includes(r.exitCode);
    if (!ok) {
      const last = output.trim().split('\n').slice(-8).join('\n') || 'no output';
      return {
        address,
        status: 'failed',
        output,
        error: new OpdError('backend-failed', `${shown(spec)} exited ${r.exitCode}: ${last}`, {
          address,
          hint: 'fix the command or its guard; it runs again on the next apply',
        }),
      };
    }
    return { address, status: 'ok', output };
  } catch (err) {
    return { address, status: 'failed', error: toOpdError(err) };
  }
}

function tailOf(s: string): string {
  return s.length > OUTPUT_MAX ? '…' + s.slice(-OUTPUT_MAX) : s;
}

/** An exec change: run command `name` (a refresh: triggered by refresh_on). */
interface ExecChangeData {
  name: string;
  spec: CommandSpec;
  refresh: boolean;
}

const plugin: Plugin<ExecSection, ExecChangeData> = {
  ...sectionSpec(manifest),

  normalize(section) {
    // what a step reads on stdin is secret even when written inline: its lines are masked in the
    // step's output too (a command that echoes what it read), not only where the field is shown
    if (isObj(section) && isObj(section.commands))
      registerSecretValues(
        Object.values(section.commands).flatMap((c) => (isObj(c) && typeof c.stdin === 'string' ? [c.stdin] : [])),
      );
    return section;
  },

  async read(_ctx, desired) {
    const commands: Record<string, CommandSpec> = {};
    const named = Object.entries(desired.commands ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
    const results = await Promise.all(
      named.map(async ([n, spec]) => {
        if (!isObj(spec)) return [n, undefined] as const;
        // a refresh_on command never runs on its own (its guards are checked when it is refreshed)
        if (spec.refresh_on) return [n, strip(spec)] as const;
        return [n, (await needsRun(spec)) === undefined ? strip(spec) : undefined] as const;
      }),
    );
    for (const [n, v] of results) if (v) commands[n] = v;
    return { commands };
  },

  plan(diff) {
    if (diff.action !== 'create' || !diff.desired) return [];
    const spec = diff.desired as CommandSpec;
    const why = [
      spec.creates !== undefined ? `${spec.creates} does not exist` : '',
      spec.unless ? 'its unless command fails' : '',
      spec.onlyif ? 'its onlyif command succeeds' : '',
    ]
      .filter(Boolean)
      .join(', ');
    return [runChange(diff.name, spec, why || 'its guard says it has not run', 'run', diff.ops)];
  },

  refresh(desired, changed) {
    const out: Change<ExecChangeData>[] = [];
    for (const [n, spec] of Object.entries(desired.commands ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!spec.refresh_on) continue;
      const hit = spec.refresh_on.filter((s) => [...changed].some((c) => matches(s, c)));
      if (hit.length) out.push(runChange(n, strip(spec), `refresh: ${hit.join(', ')} changed`, 'refresh'));
    }
    return out;
  },

  edges(desired) {
    const out: Edge[] = [];
    for (const [n, spec] of Object.entries(desired.commands ?? {}))
      for (const to of spec.refresh_on ?? []) out.push({ from: `exec/commands/${n}`, to, kind: 'refresh_on' });
    return out;
  },

  async apply(ctx, changes) {
    assertApplyContext(ctx);
    const out: ChangeResult[] = [];
    // one at a time, in plan order: steps of a guide are sequential
    for (const c of changes) {
      const d = c.data!;
      // stopping (a first SIGINT/SIGTERM): the step in hand finishes, no other one begins
      if (await stopRequested(ctx)) {
        out.push({ address: c.address, status: 'not-started' });
        continue;
      }
      out.push(await execute(ctx, d.name, d.spec, d.refresh));
    }
    return out;
  },
};

export default plugin;
