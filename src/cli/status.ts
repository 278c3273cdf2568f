import { byText } from './audit.js';
import { Command, Option } from 'commander';
import { act, outputOption, stdio } from './common.js';
import { addConsoleOptions, diffLines, paint, printJSON, styleFor } from './output.js';
import { displayAddress } from '../core/plan.js';
import { callRead } from '../dbus.js';
import { EXIT, OpdError } from '../core/errors.js';
import { BUS_NAME, INTERFACE, OBJECT_PATH } from '../daemon/dbus-api.js';
import { TUNABLES } from '../core/tunables.js';

interface Status {
  state: string;
  status_line: string;
  pid: number;
  state_file: string;
  document_error: { message: string; at: string } | null;
  watching: string[];
  polling: string[];
  runs: number;
  drift_corrected: number;
  last_run: { run?: string; status: string; trigger: string; at: string; changes: number; error?: string } | null;
  failing: { address: string; error?: string; failures: number; next_attempt_at: string | null }[];
  resources: {
    address: string;
    state: string;
    error?: string;
    last_drift?: { at: string; diff?: string; diff_note?: string; attribution?: unknown };
  }[];
}

export function statusCommand(): Command {
  const cmd = new Command('status')
    .description(
      'ask the running opd daemon (over D-Bus) how the host stands: per-resource outcome, last run, failing resources (exit 0 converged, 1 failing, 69 no daemon)',
    )
    .addOption(outputOption(['text', 'json'], 'text'))
    .addOption(new Option('--apply', 'ask the daemon to reconcile now (root only), then print the status'));
  return addConsoleOptions(cmd).action(
    act(async (_opts: Record<string, unknown>, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const ask = async (member: string) => {
        try {
          return (
            await callRead(
              {},
              {
                destination: BUS_NAME,
                path: OBJECT_PATH,
                interface: INTERFACE,
                member,
                timeout: TUNABLES.daemonCallMs,
              },
            )
          )[0] as string;
        } catch (err) {
          if (err instanceof OpdError && err.kind === 'backend-unavailable')
            throw new OpdError('backend-unavailable', `no opd daemon on the system bus (${BUS_NAME})`, {
              hint: 'start it: systemctl start opd (or opd daemon --state FILE)',
            });
          throw err;
        }
      };
      if (o.apply) await ask('Apply');
      const s = JSON.parse(await ask('Status')) as Status;
      const st = styleFor(o);
      if (o.output === 'json') {
        const { format_version: _v, ...rest } = s as Status & { format_version?: number };
        printJSON(
          o.content === false
            ? {
                ...rest,
                resources: rest.resources.map((r) => ({
                  ...r,
                  last_drift: r.last_drift && { at: r.last_drift.at, attribution: r.last_drift.attribution },
                })),
              }
            : rest,
        );
      } else {
        stdio.out(`opd daemon (pid ${s.pid}): ${s.status_line}`);
        stdio.out(`state file: ${s.state_file}`);
        if (s.document_error)
          stdio.out(
            `REJECTED state file edit (${s.document_error.at}), the last good document stays in force:\n  ${s.document_error.message.replace(/\n/g, '\n  ')}`,
          );
        stdio.out(
          `events: ${s.watching.join(', ') || 'none'}; polling: ${s.polling.join(', ') || 'none'}; ${s.runs} runs, ${s.drift_corrected} drifts corrected`,
        );
        if (s.last_run)
          stdio.out(
            `last run: ${s.last_run.at} ${s.last_run.status} (${s.last_run.trigger}, ${s.last_run.changes} changes)${s.last_run.error ? `: ${s.last_run.error}` : ''}`,
          );
        for (const r of s.resources) {
          const mark =
            r.state === 'converged'
              ? paint(st, 'green', 'ok     ')
              : r.state === 'failing'
                ? paint(st, 'red', 'FAILING')
                : paint(st, 'yellow', r.state.padEnd(7));
          stdio.out(`${mark} ${displayAddress(r.address)}${r.error ? `: ${r.error}` : ''}`);
          if (r.last_drift) {
            stdio.out(`          drifted at ${r.last_drift.at}${byText(r.last_drift.attribution)} (repaired)`);
            if (o.content !== false)
              for (const l of diffLines(st, r.last_drift.diff, r.last_drift.diff_note, '          ')) stdio.out(l);
          }
        }
        for (const f of s.failing)
          if (f.next_attempt_at) stdio.out(`  retry ${f.address} at ${f.next_attempt_at} (failure ${f.failures})`);
      }
      return s.state === 'converged' ? EXIT.ok : EXIT.failed;
    }),
  );
}
