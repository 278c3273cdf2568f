import { Command } from 'commander';
import { act, outputOption, stdio } from './common.js';
import { FACTS, FACT_NAMES, factsJSON, readHostFacts } from '../core/facts.js';

/** `opd facts`: the host facts a document may use (`${fact.NAME}`, `when: { NAME: value }`). */
export function factsCommand(): Command {
  return new Command('facts')
    .description(
      "print this host's facts, which a document uses as ${fact.NAME} or in a resource's when: { NAME: value } (read once per run, recorded in run.start)",
    )
    .addOption(outputOption(['text', 'json'], 'text'))
    .addHelpText(
      'after',
      `\nFacts:\n${FACT_NAMES.map((n) => `  ${n.padEnd(17)}${FACTS[n].type.padEnd(8)} ${FACTS[n].description}`).join('\n')}`,
    )
    .action(
      act(async (opts: Record<string, unknown>) => {
        const f = readHostFacts();
        if (opts.output === 'json') {
          stdio.out(JSON.stringify(factsJSON(f), null, 2));
          return 0;
        }
        const w = Math.max(...FACT_NAMES.map((n) => n.length)) + 2;
        for (const n of FACT_NAMES) {
          const why = f.why[n] ? `   (${f.why[n]})` : '';
          stdio.out(`${n.padEnd(w)}${String(f.values[n])}${why}`);
        }
        return 0;
      }),
    );
}
