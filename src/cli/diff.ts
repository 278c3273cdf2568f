import { Command, Option } from 'commander';
import {
  act,
  addAuditOptions,
  auditPaths,
  addVarOptions,
  varsFrom,
  onlyOption,
  parseOnly,
  targetOption,
  makeLogger,
  outputOption,
  stdio,
} from './common.js';
import { addSettingOptions, settingsFrom } from './settings.js';
import { computePlan, prepareFile, restrictPlugins, staging, unreachableError } from '../core/engine.js';
import { printAdvisories, printNotes } from './common.js';
import { type PlanSummary } from '../core/plan.js';
import { addConsoleOptions, changeText, printJSON, styleFor, type Style } from './output.js';
import { registry } from '../plugins/index.js';
import { EXIT } from '../core/errors.js';
import { planView, planViewJSON, unknownJSON, unknownLines, type UnknownShown } from '../core/report.js';
import { makeSavedPlan, writeSavedPlan } from '../core/saved-plan.js';
import { diffFields } from '../core/content.js';
import { secretKey } from '../audit/key.js';

/** The human form of a plan (opd diff, opd show-plan, apply --dry-run): each change with its content diff. */
export function printPlan(
  changes: (Parameters<typeof changeText>[1] & { refused?: string })[],
  summary: PlanSummary,
  unknown: UnknownShown[],
  st: Style = { color: false },
  tail = '',
): void {
  const unknownCount = unknown.reduce((n, u) => n + u.resources.length, 0);
  if (!changes.length && !unknownCount) {
    stdio.out('no changes: the host matches the document');
    return;
  }
  for (const c of changes) stdio.out(changeText(st, c));
  for (const l of unknownLines(unknown)) stdio.out(l);
  stdio.out(
    `\n${tail ? 'dry run' : 'plan'}: ${summaryText(summary)}${unknownCount ? `; ${unknownCount} unknown (${unknown.map((u) => u.plugin).join(', ')} unreachable)` : ''}${tail}`,
  );
}

/** `2 to create, 1 to change, 0 to delete, 1 refused` */
export function summaryText(s: PlanSummary): string {
  return `${s.create} to create, ${s.change} to change, ${s.delete} to delete${s.refused ? `, ${s.refused} refused` : ''}`;
}

export function diffCommand(): Command {
  const cmd = addAuditOptions(
    addVarOptions(
      addSettingOptions(
        new Command('diff')
          .description(
            'show the ordered plan without changing anything (exit 0: nothing to do, 2: changes pending, 69: a backend is down — the rest is still planned, its resources show as unknown)',
          )
          .argument('<file>', 'state document (YAML or JSON; - for stdin)')
          .addOption(outputOption(['text', 'json'], 'text'))
          .addOption(onlyOption())
          .addOption(targetOption())
          .addOption(new Option('--allow-destroy', 'plan data-destroying operations as allowed instead of refused'))
          .addOption(
            new Option(
              '--out <plan.json>',
              'also save the plan (document hash + a fingerprint of each resource it was computed from) for `opd apply plan.json`; secrets in it are keyed hashes (the key beside the audit trail)',
            ),
          ),
      ),
    ),
  );
  return addConsoleOptions(cmd).action(
    act(async (file: string, _opts: Record<string, unknown>, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const settings = settingsFrom(o);
      const prep = restrictPlugins(
        await prepareFile(registry, file, settings, varsFrom(o)),
        parseOnly(o.only),
        registry.names,
      );
      printNotes(prep);
      const log = await makeLogger(o);
      const targets = o.target as string[] | undefined;
      const c = await computePlan(prep, { settings, log, allowDestroy: o.allowDestroy === true, targets });
      const { plan } = c;
      printAdvisories(c.advisories);
      const pv = planView(plan, prep.redactor, o.content !== false);
      const view = planViewJSON(pv);
      const unknown = unknownJSON(c.unreachable);
      if (o.output === 'json') printJSON({ ...view, ...(unknown.length ? { unknown } : {}) });
      else printPlan(view.changes, view.summary, unknown, styleFor(o));
      if (c.unreachable.length) {
        // a backend this plan itself brings up (a database server it installs and starts)
        const waiting = staging(prep, c.diffs, c.unreachable, 'first').waiting;
        for (const u of waiting)
          stdio.err(
            `opd: ${u.plugin}: its resources depend on changes of this plan; opd apply reads, plans and applies them after those, in the same run`,
          );
        if (o.out) stdio.err(`opd: the plan was not saved to ${o.out as string}: it has unknown resources`);
        throw unreachableError(c.unreachable, true);
      }
      if (o.out) {
        const audit = auditPaths(o);
        const keyed = prep.redactor.withKey(secretKey(audit.log, audit.key));
        const saved = makeSavedPlan(prep, c, {
          allowDestroy: o.allowDestroy === true,
          keyed,
          targets,
          content: (id) => diffFields(pv.content.get(id)),
        });
        writeSavedPlan(o.out as string, saved);
        if (o.output !== 'json')
          stdio.err(
            `opd: plan saved to ${o.out as string} (plan ${saved.plan_hash.slice(0, 12)}); apply it with: opd apply ${o.out as string}`,
          );
      }
      return plan.changes.length ? EXIT.changesPending : EXIT.ok;
    }),
  );
}
