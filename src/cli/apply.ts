import { Command, Option } from 'commander';
import {
  act,
  addVarOptions,
  varsFrom,
  onlyOption,
  parseOnly,
  targetOption,
  addAuditOptions,
  auditPaths,
  makeLogger,
  outputOption,
  parseSeconds,
  stdio,
} from './common.js';
import { addSettingOptions, settingsFrom } from './settings.js';
import { prepareFile, restrictPlugins, unreachableError } from '../core/engine.js';
import { run } from '../run/index.js';
import { printAdvisories, printNotes } from './common.js';
import { checkSavedPlan, readSavedPlan } from '../core/saved-plan.js';
import { secretKey } from '../audit/key.js';
import { confirmDir, keeperAlive, pendingRuns, startConfirmWait, waitForOutcome } from '../run/confirm.js';
import { OpdError } from '../core/errors.js';
import { displayAddress, formatChange } from '../core/plan.js';
import { diffFields, planContentDiffs, type ContentDiff } from '../core/content.js';
import { addConsoleOptions, diffLines, paint, styleFor, type Style } from './output.js';
import { Progress } from './progress.js';
import { printPlan } from './diff.js';
import { registry } from '../plugins/index.js';
import { EXIT } from '../core/errors.js';
import type { ChangeOutcome } from '../core/apply.js';
import { countOutcomes, ms, planView, planViewJSON, reportJSON, unknownJSON, unknownLines } from '../core/report.js';
import { noTrap, signalExit, trapStopSignals } from './signals.js';

const MARK: Record<string, string> = { ok: 'ok     ', failed: 'FAILED ', skipped: 'skipped', refused: 'refused' };
const MARK_COLOR: Record<string, 'green' | 'red' | 'yellow'> = {
  ok: 'green',
  failed: 'red',
  skipped: 'yellow',
  refused: 'red',
};

/** A change's outcome line (and, for one that changed something, its content diff). */
export function outcomeLine(o: ChangeOutcome, st: Style = { color: false }, content?: ContentDiff[]): string {
  const err =
    o.error && o.status !== 'ok'
      ? `\n          ${o.error.message}${o.error.hint ? `\n          hint: ${o.error.hint}` : ''}`
      : '';
  const mark = paint(st, MARK_COLOR[o.status] ?? 'yellow', MARK[o.status] ?? o.status);
  const diff = o.status === 'ok' && content?.length ? diffFields(content) : {};
  return [
    `${mark} ${formatChange({ ...o.change, refused: undefined })}${o.attempts > 1 ? ` (${o.attempts} attempts)` : ''}${err}`,
    ...diffLines(st, diff.diff, diff.diff_note, '          '),
  ].join('\n');
}

export function applyCommand(): Command {
  const cmd = addVarOptions(
    addAuditOptions(
      addSettingOptions(
        new Command('apply')
          .description(
            'converge the host to the document: apply in dependency order, verify, record in the audit trail (exit 0 only when the host matches). SIGINT/SIGTERM: no new change starts, the ones in flight finish and are recorded (exit 130/143); a second signal aborts them (the next run recovers them from the host)',
          )
          .argument(
            '<file>',
            'state document (YAML or JSON; - for stdin), or a plan saved by `opd diff FILE --out plan.json` (applied exactly, or refused with exit 3 naming what changed)',
          )
          .addOption(new Option('--dry-run', 'plan only; never change anything (same as opd diff)'))
          .addOption(
            new Option('--rollback', 'when a change or verification fails, revert the changes already applied'),
          )
          .addOption(
            new Option('--allow-destroy', 'allow data-destroying operations (destroying containers, domains, storage)'),
          )
          .addOption(onlyOption())
          .addOption(targetOption())
          .addOption(new Option('--quiet', 'print only failures and the summary (no line per change, no progress)'))
          .addOption(
            new Option('--lock-wait <seconds>', 'how long to wait for another opd run to finish').default('300'),
          )
          .addOption(
            new Option(
              '--partial',
              'when a backend is down, apply the reachable part anyway (exit 1, naming the rest); without it nothing is applied (exit 69)',
            ),
          )
          .addOption(
            new Option(
              '--confirm <seconds>',
              'after applying, wait this long for `opd confirm` (from any shell); without it every change of the run is reverted — also when this process or its shell dies',
            ),
          )
          .addOption(outputOption(['text', 'json'], 'text')),
      ),
    ),
  );
  return addConsoleOptions(cmd).action(
    act(async (file: string, _opts: Record<string, unknown>, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const saved = readSavedPlan(file);
      if (saved && o.dryRun)
        throw new OpdError('usage', 'a saved plan is already a dry run: show it with opd show-plan');
      const settings = settingsFrom(o);
      const prep = restrictPlugins(
        await prepareFile(registry, saved ? saved.file : file, settings, varsFrom(o)),
        parseOnly(o.only),
        registry.names,
      );
      printNotes(prep);
      const log = await makeLogger(o);
      const audit = auditPaths(o);
      const text = o.output !== 'json';
      const confirmS = o.confirm !== undefined ? parseSeconds(o.confirm as string, '--confirm', 0) : undefined;
      if (confirmS !== undefined && (confirmS < 1 || o.dryRun))
        throw new OpdError(
          'usage',
          o.dryRun ? '--confirm needs a real apply, not --dry-run' : '--confirm needs at least 1 second',
        );
      if (!o.dryRun) {
        const waiting = pendingRuns(audit.log);
        if (waiting.length)
          throw new OpdError(
            'lock-busy',
            `run ${waiting[0].run} (${waiting[0].file}) is waiting for confirmation until ${new Date(waiting[0].deadline).toISOString()}; nothing was applied`,
            {
              hint: keeperAlive(audit.log, waiting[0].run)
                ? 'confirm it with `opd confirm`, or let it revert first'
                : 'its keeper is gone (a reboot?): keep it with `opd confirm`, or revert it with `opd confirm --revert`',
            },
          );
      }
      let pendingConfirm: Awaited<ReturnType<typeof startConfirmWait>> | undefined;
      // SIGINT/SIGTERM: the first stops the run cleanly, a second aborts what is in flight (a dry
      // run changes nothing: the signals keep their default action)
      let applied = 0;
      const trap = (o.dryRun ? noTrap : trapStopSignals)(
        (sig) =>
          stdio.err(
            `opd: ${sig}: finishing the changes in flight, starting no new one (${sig} again aborts them at once)`,
          ),
        (sig) =>
          stdio.err(
            `opd: ${sig} again: aborted the changes in flight after ${applied} applied; the next opd run reads them from the host and records what it finds`,
          ),
      );
      const st = styleFor(o);
      const quiet = o.quiet === true;
      const showContent = o.content !== false;
      let content = new Map<number, ContentDiff[]>();
      let progress: Progress | undefined;
      const report = await run(prep, {
        stop: trap.stop,
        signal: trap.abort,
        settings,
        log,
        targets: saved ? saved.targets : (o.target as string[] | undefined),
        partial: o.partial === true,
        onPlan: (c) => {
          if (!text) return;
          if (showContent && !quiet) content = planContentDiffs(c.plan, prep.redactor);
          progress = new Progress({
            io: stdio,
            style: st,
            tty: process.stdout.isTTY === true,
            quiet,
            total: c.plan.changes.length,
          });
        },
        onStart: (changes) => progress?.start(changes),
        ...(saved
          ? {
              expect: (c) =>
                checkSavedPlan(saved, prep, c, file, prep.redactor.withKey(secretKey(audit.log, audit.key))),
              startFields: { saved_plan: saved.plan_hash, plan_file: file },
            }
          : {}),
        ...(confirmS !== undefined
          ? {
              afterRun: async (a, runId, c, touched) => {
                pendingConfirm = await startConfirmWait({
                  prep,
                  c,
                  touched,
                  run: runId,
                  seconds: confirmS,
                  settings,
                  auditLog: audit.log,
                  auditKey: audit.key,
                });
                a.append(runId, 'confirm', {
                  state: 'applied',
                  deadline: new Date(pendingConfirm.deadline).toISOString(),
                  keeper: pendingConfirm.keeper,
                  resources: pendingConfirm.pre.map((x) => x.address),
                });
              },
            }
          : {}),
        allowDestroy: saved ? saved.allow_destroy : o.allowDestroy === true,
        dryRun: o.dryRun === true,
        rollback: o.rollback === true,
        auditLog: audit.log,
        auditKey: audit.key,
        lockWaitMs: parseSeconds(o.lockWait as string, '--lock-wait', 300) * 1000,
        trigger: 'cli',
        onLockWait: (pid) => stdio.err(`opd: waiting for another opd run (pid ${pid}) to finish…`),
        onChange: (x) => {
          if (x.status === 'ok') applied++;
          if (text)
            progress?.outcome(x, quiet && x.status === 'ok' ? '' : outcomeLine(x, st, content.get(x.change.id)));
        },
        onRollback: text
          ? (x) => (progress ?? { print: stdio.out }).print(`rollback ${outcomeLine(x, st)}`)
          : undefined,
      }).finally(() => {
        progress?.close();
        // a signal after the run: default action; a second one after a first: exit 130/143 at once
        trap.settle();
      });
      printAdvisories(report.computed?.advisories);
      if (!text) {
        stdio.out(JSON.stringify(reportJSON(report, prep.redactor, showContent), null, 2));
      } else {
        for (const r of report.audit?.recovered ?? []) stdio.err(`opd: ${r}`);
        if (report.status === 'planned') {
          const view = planViewJSON(planView(report.plan, prep.redactor, showContent));
          printPlan(view.changes, view.summary, [], st, '; nothing was changed');
        } else if (report.status === 'noop') {
          stdio.out('no changes: the host matches the document');
        } else if (report.status === 'interrupted') {
          const s = countOutcomes(report.outcomes);
          const notStarted = report.run
            ? report.outcomes.filter((x) => x.notStarted).length
            : report.plan.changes.length;
          // a stop during the first stage: the second stage's plugins were not even read
          const later = (report.stageTwoNotStarted ?? []).map(
            (u) => `${u.plugin} (${u.resources.length} resource${u.resources.length === 1 ? '' : 's'})`,
          );
          stdio.out(
            `\ninterrupted: ${s.ok} applied, ${notStarted} not started${later.length ? `, second stage not started: ${later.join(', ')}` : ''}${s.failed ? `, ${s.failed} failed` : ''} (${report.interrupted}${report.run ? `; run ${report.run}, recorded in the audit trail` : '; nothing was begun'})`,
          );
        } else if (report.status === 'blocked') {
          for (const c of report.plan.changes.filter((c) => c.blocker))
            stdio.out(`${paint(st, 'red', 'blocked')} ${displayAddress(c.address)}: ${c.blocker}`);
          stdio.out('\nnothing was applied: a precondition failed');
        } else {
          for (const v of report.verification)
            stdio.out(
              v.error
                ? `${paint(st, 'red', 'FAILED')} verification of ${displayAddress(v.address)}: could not read it again: ${v.error}`
                : `${paint(st, 'red', 'FAILED')} verification of ${displayAddress(v.address)}: the host still differs (${JSON.stringify(v.ops).slice(0, 300)})`,
            );
          const s = countOutcomes(report.outcomes);
          const rb = report.rollback
            ? `; rolled back ${report.rollback.outcomes.filter((x) => x.status === 'ok').length} of ${report.rollback.outcomes.length}${report.rollback.verification.length ? ` (${report.rollback.verification.length} not restored)` : ''}`
            : '';
          stdio.out(
            `\n${report.status === 'ok' ? 'applied' : 'FAILED'}: ${s.ok} ok, ${s.failed} failed, ${s.skipped} skipped, ${s.refused} refused in ${ms(report.durationMs)}; verification ${report.verification.length ? `failed for ${report.verification.length}` : s.ok === 0 ? 'not run (nothing was applied)' : s.failed + s.skipped + s.refused ? `passed for the ${s.ok} changes that succeeded` : 'passed'}${rb} (run ${report.run})`,
          );
        }
      }
      if (report.unreachable.length) {
        if (text) for (const l of unknownLines(unknownJSON(report.unreachable))) stdio.out(l);
        if (o.dryRun) throw unreachableError(report.unreachable, true);
        // --partial: the reachable part was applied; the rest is reported and the run fails
        stdio.err(
          unreachableError(report.unreachable, true)
            .format()
            .replace(/^opd: /, 'opd: not applied: '),
        );
        return EXIT.failed;
      }
      if (pendingConfirm) {
        const pc = pendingConfirm;
        if (text)
          stdio.out(
            `\nwaiting for \`opd confirm\` until ${new Date(pc.deadline).toISOString()} (${confirmS} s); without it the ${pc.pre.length} changed resource${pc.pre.length === 1 ? ' is' : 's are'} reverted (run ${report.run}; keeper pid ${pc.keeper}, state in ${confirmDir(audit.log)})`,
          );
        const r = await waitForOutcome(audit.log, report.run!);
        if (r.state === 'confirmed') {
          if (text) stdio.out(`confirmed: run ${report.run} stays applied`);
          return EXIT.ok;
        }
        if (text) stdio.out(`REVERTED: no confirmation by the deadline; ${r.detail}`);
        return EXIT.failed;
      }
      if (confirmS !== undefined && text && report.status === 'noop') stdio.out('nothing to confirm');
      if (report.status === 'interrupted') return signalExit(report.interrupted ?? 'SIGTERM');
      if (report.status === 'planned') return EXIT.changesPending;
      return report.status === 'ok' || report.status === 'noop' ? EXIT.ok : EXIT.failed;
    }),
  );
}
