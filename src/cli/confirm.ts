import { Command, Option } from 'commander';
import { act, addAuditOptions, auditPaths, makeLogger, outputOption, stdio } from './common.js';
import { confirmRuns, keeper, pendingRuns } from '../core/confirm.js';
import { EXIT, OpdError } from '../core/errors.js';

export function confirmCommand(): Command {
  return addAuditOptions(
    new Command('confirm')
      .description('confirm the runs of `opd apply --confirm SECONDS` that wait for it (from any shell on the host); unconfirmed runs are reverted at their deadline')
      .addOption(new Option('--run <id>', 'confirm only this run'))
      .addOption(new Option('--list', 'only list the runs waiting for confirmation'))
      .addOption(outputOption(['text', 'json'], 'text'))
      .addOption(new Option('--keeper <file>', 'internal: the detached process that reverts at the deadline').hideHelp()),
  ).action(act(async (_o: Record<string, unknown>, cmd: Command) => {
    const o = cmd.optsWithGlobals();
    if (o.keeper) return keeper(o.keeper as string, await makeLogger({ logLevel: 'info', ...o }));
    const { log } = auditPaths(o);
    if (o.list) {
      const runs = pendingRuns(log).map((r) => ({ run: r.run, file: r.file, deadline: new Date(r.deadline).toISOString(), resources: r.pre.map((x) => x.address) }));
      if (o.output === 'json') stdio.out(JSON.stringify(runs, null, 2));
      else if (!runs.length) stdio.out('no run is waiting for confirmation');
      else for (const r of runs) stdio.out(`${r.run} ${r.file}: reverts at ${r.deadline} unless confirmed (${r.resources.join(', ')})`);
      return EXIT.ok;
    }
    const done = await confirmRuns(log, o.run as string | undefined);
    if (!done.length)
      throw new OpdError('refused', o.run ? `run ${o.run as string} is not waiting for confirmation` : 'no run is waiting for confirmation', {
        hint: 'it may have been reverted already: see opd audit log --tail 20',
      });
    if (o.output === 'json') stdio.out(JSON.stringify({ confirmed: done }, null, 2));
    else for (const r of done) stdio.out(`confirmed run ${r}: its changes stay`);
    return EXIT.ok;
  }));
}
