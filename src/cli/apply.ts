import { Command, Option } from 'commander';
import { act, addAuditOptions, addSettingOptions, auditPaths, makeLogger, outputOption, parseSeconds, settingsFrom, stdio } from './common.js';
import { printWarnings } from './common.js';
import { prepareFile, run, countOutcomes, type RunReport } from '../core/engine.js';
import { formatChange, planJSON, summarize } from '../core/plan.js';
import { EXIT } from '../core/errors.js';
import type { ChangeOutcome } from '../core/apply.js';
import { Redactor } from '../core/secrets.js';
import { ms, redactPlan } from './render.js';

const MARK: Record<string, string> = { ok: 'ok     ', failed: 'FAILED ', skipped: 'skipped', refused: 'refused' };

function outcomeLine(o: ChangeOutcome): string {
  const err = o.error && o.status !== 'ok' ? `\n          ${o.error.message}${o.error.hint ? `\n          hint: ${o.error.hint}` : ''}` : '';
  return `${MARK[o.status] ?? o.status} ${formatChange({ ...o.change, refused: undefined })}${o.attempts > 1 ? ` (${o.attempts} attempts)` : ''}${err}`;
}

export function reportJSON(r: RunReport): object {
  const red = redactPlan(r.plan, new Redactor());
  return {
    status: r.status,
    run: r.run,
    duration_ms: r.durationMs,
    plan: planJSON(red),
    outcomes: r.outcomes.map((o) => ({ address: o.change.address, action: o.change.action, status: o.status, ...(o.error ? { error: o.error.message } : {}), attempts: o.attempts })),
    verification: r.verification,
    ...(r.rollback ? { rollback: { outcomes: r.rollback.outcomes.map((o) => ({ address: o.change.address, action: o.change.action, status: o.status, ...(o.error ? { error: o.error.message } : {}) })), verification: r.rollback.verification } } : {}),
    ...(r.audit ? { audit: r.audit } : {}),
  };
}

export function applyCommand(): Command {
  return addAuditOptions(
    addSettingOptions(
      new Command('apply')
        .description('converge the host to the document: apply in dependency order, verify, record in the audit trail (exit 0 only when the host matches)')
        .argument('<file>', 'state document (YAML or JSON; - for stdin)')
        .addOption(new Option('--dry-run', 'plan only; never change anything (same as opd diff)'))
        .addOption(new Option('--rollback', 'when a change or verification fails, revert the changes already applied'))
        .addOption(new Option('--allow-destroy', 'allow data-destroying operations (destroying containers, domains, storage)'))
        .addOption(new Option('--lock-wait <seconds>', 'how long to wait for another opd run to finish').default('300'))
        .addOption(outputOption(['text', 'json'], 'text')),
    ),
  ).action(act(async (file: string, _opts: Record<string, unknown>, cmd: Command) => {
    const o = cmd.optsWithGlobals();
    const prep = await prepareFile(file);
    printWarnings(prep.warnings);
    const log = await makeLogger(o);
    const audit = auditPaths(o);
    const text = o.output !== 'json';
    const report = await run(prep, {
      settings: settingsFrom(o),
      log,
      allowDestroy: o.allowDestroy === true,
      dryRun: o.dryRun === true,
      rollback: o.rollback === true,
      auditLog: audit.log,
      auditKey: audit.key,
      lockWaitMs: parseSeconds(o.lockWait as string, '--lock-wait', 300) * 1000,
      trigger: 'cli',
      onLockWait: (pid) => stdio.err(`opd: waiting for another opd run (pid ${pid}) to finish…`),
      onChange: text ? (x) => stdio.out(outcomeLine(x)) : undefined,
      onRollback: text ? (x) => stdio.out(`rollback ${outcomeLine(x)}`) : undefined,
    });
    if (!text) {
      stdio.out(JSON.stringify(reportJSON(report), null, 2));
    } else {
      for (const r of report.audit?.recovered ?? []) stdio.err(`opd: ${r}`);
      if (report.status === 'planned') {
        const shown = redactPlan(report.plan, new Redactor());
        for (const c of shown.changes) stdio.out(formatChange(c));
        const s = summarize(shown);
        stdio.out(`\ndry run: ${s.create} to create, ${s.update + s.other} to change, ${s.delete} to delete${s.refused ? `, ${s.refused} refused` : ''}; nothing was changed`);
      } else if (report.status === 'noop') {
        stdio.out('no changes: the host matches the document');
      } else if (report.status === 'blocked') {
        for (const c of report.plan.changes.filter((c) => c.blocker)) stdio.out(`blocked ${c.address}: ${c.blocker}`);
        stdio.out('\nnothing was applied: a precondition failed');
      } else {
        for (const v of report.verification)
          stdio.out(v.error ? `FAILED verification of ${v.address}: could not read it again: ${v.error}` : `FAILED verification of ${v.address}: the host still differs (${JSON.stringify(v.ops).slice(0, 300)})`);
        const s = countOutcomes(report.outcomes);
        const rb = report.rollback ? `; rolled back ${report.rollback.outcomes.filter((x) => x.status === 'ok').length} of ${report.rollback.outcomes.length}${report.rollback.verification.length ? ` (${report.rollback.verification.length} not restored)` : ''}` : '';
        stdio.out(
          `\n${report.status === 'ok' ? 'applied' : 'FAILED'}: ${s.ok} ok, ${s.failed} failed, ${s.skipped} skipped, ${s.refused} refused in ${ms(report.durationMs)}; verification ${report.verification.length ? `failed for ${report.verification.length}` : s.ok === 0 ? 'not run (nothing was applied)' : s.failed + s.skipped + s.refused ? `passed for the ${s.ok} changes that succeeded` : 'passed'}${rb} (run ${report.run})`,
        );
      }
    }
    if (report.status === 'planned') return EXIT.changesPending;
    return report.status === 'ok' || report.status === 'noop' ? EXIT.ok : EXIT.failed;
  }));
}
