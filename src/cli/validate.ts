import { Command } from 'commander';
import { act, addVarOptions, varsFrom, stdio } from './common.js';
import { addSettingOptions, settingsFrom } from './settings.js';
import { printNotes } from './common.js';
import { prepareFile } from '../core/engine.js';
import { registry } from '../plugins/index.js';
import { OpdError } from '../core/errors.js';

export function validateCommand(): Command {
  return addVarOptions(
    addSettingOptions(
      new Command('validate')
        .description(
          'check state documents against the schema and the semantic rules (what a backend would refuse: NAT network without ip, links to undeclared OVS bridges, WantedBy= unknown units, duplicate addresses); every problem at once with file:line:col (exit 65 when invalid); fields accepted but not acted on (op-dbus forms) are printed as warnings on stderr',
        )
        .argument('<files...>', 'state documents (YAML or JSON; - for stdin)'),
    ),
  ).action(
    act(async (files: string[], _o: Record<string, unknown>, cmd: Command) => {
      const settings = settingsFrom(cmd.optsWithGlobals());
      const errors: OpdError[] = [];
      for (const f of files) {
        try {
          const p = await prepareFile(registry, f, settings, varsFrom(cmd.optsWithGlobals()));
          printNotes(p);
          let n = 0;
          for (const [name, plugin] of p.plugins)
            for (const c of plugin.collections)
              n += Object.keys((p.doc.plugins[name]?.[c] as object | undefined) ?? {}).length;
          stdio.out(
            `ok: ${f} (${n} resource${n === 1 ? '' : 's'} in ${[...p.plugins.keys()].join(', ') || 'no plugins'})`,
          );
        } catch (err) {
          if (!(err instanceof OpdError) || files.length === 1) throw err;
          stdio.err(err.format());
          errors.push(err);
        }
      }
      if (errors.length)
        throw new OpdError('invalid-document', `${errors.length} of ${files.length} documents are invalid`);
      return 0;
    }),
  );
}
