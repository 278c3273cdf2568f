import { Command } from 'commander';
import { stringify } from 'yaml';
import { act, makeLogger, outputOption, stdio } from './common.js';
import { settingsFrom, inspectCommand } from './settings.js';
import { loadAll } from '../plugins/index.js';
import { OpdError, toOpdError } from '../core/errors.js';
import { sortKeys } from '../core/canonical.js';
import { newRedactor } from '../core/validate.js';
import { printJSON } from './output.js';

export function showCommand(): Command {
  return inspectCommand(
    'show',
    "print the host's current state as an opd document (feed it back with opd apply to adopt a host)",
    [
      ['--all', 'include what opd does not manage by default (e.g. every loaded systemd unit)'],
      outputOption(['yaml', 'json'], 'yaml'),
    ],
  ).action(
    act(async (_opts: Record<string, unknown>, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const log = await makeLogger(o);
      const all = await loadAll();
      const wanted = (o.plugin as string[] | undefined) ?? [...all.keys()].filter((n) => all.get(n)!.show);
      for (const n of wanted) {
        if (!all.has(n))
          throw new OpdError('usage', `unknown plugin ${JSON.stringify(n)}`, {
            hint: `plugins: ${[...all.keys()].join(', ')}`,
          });
        if (!all.get(n)!.show) throw new OpdError('usage', `plugin ${n} cannot show its state`);
      }
      const explicit = o.plugin !== undefined;
      // -o json says which plugins it left out and why; the YAML is the document alone
      const leftOut: Record<string, string> = {};
      if (!explicit)
        for (const [n, p] of all)
          if (!p.show) leftOut[n] = 'no opd show for this plugin yet: it has no read-back to a document';
      const redact = newRedactor();
      const plugins: Record<string, unknown> = {};
      const ctx = { settings: settingsFrom(o), log };
      const results = await Promise.all(
        wanted.sort().map(async (n) => {
          try {
            return [n, await all.get(n)!.show!(ctx, { all: o.all === true })] as const;
          } catch (err) {
            const e = toOpdError(err);
            if (explicit) throw e;
            stdio.err(`opd: skipping ${n}: ${e.message}`);
            leftOut[n] = `could not read it: ${e.message}`;
            return [n, undefined] as const;
          }
        }),
      );
      for (const [n, v] of results) if (v !== undefined) plugins[n] = redact.section(n, v);
      const doc = sortKeys({ version: 1, plugins });
      if (o.output === 'json') printJSON({ document: doc, left_out: sortKeys(leftOut) });
      else stdio.out(`# opd show, ${new Date().toISOString()}\n` + stringify(doc, { lineWidth: 0 }));
      return 0;
    }),
  );
}
