import { Command } from 'commander';
import { act, outputOption, stdio } from './common.js';
import { readSavedPlan } from '../core/saved-plan.js';
import { EXIT, OpdError } from '../core/errors.js';
import { printPlan } from './diff.js';
import { addConsoleOptions, printJSON, styleFor } from './output.js';

export function showPlanCommand(): Command {
  const cmd = new Command('show-plan')
    .description(
      'print a plan saved by `opd diff FILE --out plan.json` as `opd diff` prints it (exit 0: nothing to do, 2: changes)',
    )
    .argument('<plan>', 'saved plan (JSON)')
    .addOption(outputOption(['text', 'json'], 'text'));
  return addConsoleOptions(cmd).action(
    act(async (file: string, _o: Record<string, unknown>, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const saved = readSavedPlan(file);
      if (!saved)
        throw new OpdError('usage', `${file} is not a saved plan`, {
          hint: 'make one with: opd diff FILE --out plan.json',
        });
      const changes =
        o.content === false
          ? saved.plan.changes.map((c) => ({ ...c, diff: undefined, diff_note: undefined }))
          : saved.plan.changes;
      if (o.output === 'json') printJSON({ ...saved.plan, changes });
      else {
        stdio.out(
          `# plan ${saved.plan_hash.slice(0, 12)} of ${saved.file} (document ${saved.document.slice(0, 12)}), made ${saved.created}`,
        );
        printPlan(changes, saved.plan.summary, [], styleFor(o));
      }
      return saved.plan.changes.length ? EXIT.changesPending : EXIT.ok;
    }),
  );
}
