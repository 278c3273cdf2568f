import { Command } from 'commander';
import { act, makeLogger, outputOption, stdio } from './common.js';
import { settingsFrom, inspectCommand } from './settings.js';
import { loadAll } from '../plugins/index.js';
import { EXIT } from '../core/errors.js';
import type { DoctorCheck } from '../core/plugin.js';

export function doctorCommand(): Command {
  return inspectCommand('doctor', 'which backends are reachable, and why not (exit 69 when one is not)', [
    outputOption(['text', 'json'], 'text'),
  ]).action(
    act(async (_o: Record<string, unknown>, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const log = await makeLogger(o);
      const all = await loadAll();
      const names = ((o.plugin as string[] | undefined) ?? [...all.keys()]).sort();
      const checks: DoctorCheck[] = [];
      for (const n of names) {
        const p = all.get(n);
        if (!p?.doctor) continue;
        checks.push(...(await p.doctor({ settings: settingsFrom(o), log })));
      }
      if (o.output === 'json') stdio.out(JSON.stringify(checks, null, 2));
      else
        for (const c of checks)
          stdio.out(
            `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}${!c.ok && c.hint ? `\n     hint: ${c.hint}` : ''}`,
          );
      return checks.every((c) => c.ok) ? EXIT.ok : EXIT.backendUnavailable;
    }),
  );
}
