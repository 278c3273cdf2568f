import { Command, Option } from 'commander';
import { act, addSettingOptions, makeLogger, outputOption, settingsFrom, stdio } from './common.js';
import { printWarnings } from './common.js';
import { computePlan, prepareFile } from '../core/engine.js';
import { formatChange, planJSON, summarize } from '../core/plan.js';
import { EXIT } from '../core/errors.js';
import { Redactor } from '../core/secrets.js';
import { redactPlan } from './render.js';

export function diffCommand(): Command {
  return addSettingOptions(
    new Command('diff')
      .description('show the ordered plan without changing anything (exit 0: nothing to do, 2: changes pending)')
      .argument('<file>', 'state document (YAML or JSON; - for stdin)')
      .addOption(outputOption(['text', 'json'], 'text'))
      .addOption(new Option('--allow-destroy', 'plan data-destroying operations as allowed instead of refused')),
  ).action(act(async (file: string, opts: Record<string, unknown>, cmd: Command) => {
    const o = cmd.optsWithGlobals();
    const prep = await prepareFile(file);
    printWarnings(prep.warnings);
    const log = await makeLogger(o);
    const { plan } = await computePlan(prep, { settings: settingsFrom(o), log, allowDestroy: o.allowDestroy === true });
    const shown = redactPlan(plan, new Redactor());
    if (o.output === 'json') stdio.out(JSON.stringify(planJSON(shown), null, 2));
    else if (!shown.changes.length) stdio.out('no changes: the host matches the document');
    else {
      for (const c of shown.changes) stdio.out(formatChange(c));
      const s = summarize(shown);
      stdio.out(`\nplan: ${s.create} to create, ${s.update + s.other} to change, ${s.delete} to delete${s.refused ? `, ${s.refused} refused` : ''}`);
    }
    return plan.changes.length ? EXIT.changesPending : EXIT.ok;
  }));
}
