import { Command } from 'commander';
import { act, addVarOptions, stdio, varsFrom } from './common.js';
import { prepareFile } from '../core/engine.js';
import { registry } from '../plugins/index.js';
import { collectEdges } from '../core/plan.js';

function dq(s: string): string {
  return JSON.stringify(s);
}

export function graphCommand(): Command {
  return addVarOptions(new Command('graph'))
    .description('print the resource dependency graph as Graphviz DOT (implicit and depends_on edges)')
    .argument('<file>', 'state document')
    .action(
      act(async (file: string, opts: Record<string, unknown>) => {
        const prep = await prepareFile(registry, file, undefined, varsFrom(opts));
        const nodes: string[] = [];
        for (const [name, p] of prep.plugins)
          for (const c of p.collections)
            for (const r of Object.keys((prep.doc.plugins[name]?.[c] as object | undefined) ?? {}))
              nodes.push(`${name}/${c}/${r}`);
        const edges = collectEdges(prep.plugins, prep.doc.plugins);
        const lines = ['digraph opd {', '  rankdir=LR;', ...nodes.sort().map((n) => `  ${dq(n)};`)];
        for (const e of [...edges].sort((a, b) => (a.from + a.to < b.from + b.to ? -1 : 1)))
          lines.push(`  ${dq(e.from)} -> ${dq(e.to)} [label=${dq(e.kind ?? 'depends_on')}];`);
        lines.push('}');
        stdio.out(lines.join('\n'));
        return 0;
      }),
    );
}
