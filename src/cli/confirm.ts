import { Command, Option } from 'commander';
import { act, addAuditOptions, addOptions, auditPaths, makeLogger, outputOption, stdio } from './common.js';
import { confirmRuns, keeper, keeperAlive, pendingFile, pendingRuns } from '../run/confirm.js';
import { registry } from '../plugins/index.js';
import { EXIT, OpdError } from '../core/errors.js';

export function confirmCommand(): Command {
  return addAuditOptions(
    addOptions(
      new Command('confirm').description(
        'confirm the runs of `opd apply --confirm SECONDS` that wait for it (from any shell on the host); unconfirmed runs are reverted at their deadline',
      ),
      [
        ['--run <id>', 'confirm only this run'],
        ['--list', 'only list the runs waiting for confirmation'],
        [
          '--revert',
          'revert the waiting runs now instead of confirming them (also for a run whose keeper died, e.g. after a reboot)',
        ],
        outputOption(['text', 'json'], 'text'),
        new Option('--keeper <file>', 'internal: the detached process that reverts at the deadline').hideHelp(),
      ],
    ),
  ).action(
    act(async (_o: Record<string, unknown>, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      if (o.keeper) return keeper(registry, o.keeper as string, await makeLogger({ logLevel: 'info', ...o }));
      const { log } = auditPaths(o);
      if (o.list) {
        const runs = pendingRuns(log).map((r) => ({
          run: r.run,
          file: r.file,
          deadline: new Date(r.deadline).toISOString(),
          keeper_alive: keeperAlive(log, r.run),
          resources: r.pre.map((x) => x.address),
        }));
        if (o.output === 'json') stdio.out(JSON.stringify(runs, null, 2));
        else if (!runs.length) stdio.out('no run is waiting for confirmation');
        else
          for (const r of runs)
            stdio.out(
              `${r.run} ${r.file}: reverts at ${r.deadline} unless confirmed (${r.resources.join(', ')})${r.keeper_alive ? '' : ' — its keeper is gone: opd confirm keeps it, opd confirm --revert reverts it'}`,
            );
        return EXIT.ok;
      }
      if (o.revert) {
        const runs = pendingRuns(log).filter((r) => !o.run || r.run === o.run);
        if (!runs.length) throw new OpdError('refused', 'no run is waiting for confirmation');
        const lg = await makeLogger(o);
        let rc: number = EXIT.ok;
        for (const r of runs) {
          const code = await keeper(registry, pendingFile(log, r.run), lg, { now: true });
          stdio.out(`${code === 0 ? 'reverted' : 'FAILED to revert fully'} run ${r.run}`);
          if (code !== 0) rc = EXIT.failed;
        }
        return rc;
      }
      const done = await confirmRuns(log, o.run as string | undefined);
      if (!done.length)
        throw new OpdError(
          'refused',
          o.run ? `run ${o.run as string} is not waiting for confirmation` : 'no run is waiting for confirmation',
          {
            hint: 'it may have been reverted already: see opd audit log --tail 20',
          },
        );
      if (o.output === 'json') stdio.out(JSON.stringify({ confirmed: done }, null, 2));
      else for (const r of done) stdio.out(`confirmed run ${r}: its changes stay`);
      return EXIT.ok;
    }),
  );
}
