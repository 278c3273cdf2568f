import { Command } from 'commander';
import { act, addVarOptions, stdio, varsFrom } from './common.js';
import { prepareFile } from '../core/engine.js';
import { registry } from '../plugins/index.js';
import { collectEdges } from '../core/plan.js';
import { declaredAddresses, resourceEdges, resourceOf } from '../core/deps.js';

function dq(s: string): string {
  return JSON.stringify(s);
}

export function graphCommand(): Command {
  return addVarOptions(new Command('graph'))
    .description(
      'print the resource dependency graph as Graphviz DOT: every edge the plan orders by (implicit edges of the plugins, the order their plans give, depends_on), labelled with its kind',
    )
    .argument('<file>', 'state document')
    .action(
      act(async (file: string, opts: Record<string, unknown>) => {
        // validated like `opd validate` (an undeclared depends_on or a cycle: exit 65)
        const prep = await prepareFile(registry, file, undefined, varsFrom(opts));
        const declared = declaredAddresses(prep.plugins, prep.doc);
        // the edges the plan orders by, drawn between the resources they concern
        const edges = resourceEdges(collectEdges(prep.plugins, prep.doc.plugins), declared);
        // parts of a resource that the plan orders on their own (a group's members) are nodes too
        const parts = [...new Set(edges.flatMap((e) => [e.from, e.to]))].filter((a) => !declared.has(a)).sort();
        // a plugin's implicit edge to something the document does not declare (a bridge made outside
        // opd that a domain plugs into): drawn to a dashed node, the host's, not the document's
        const outside = new Map<string, { from: string; to: string; kind: string }>();
        for (const e of collectEdges(prep.plugins, prep.doc.plugins)) {
          if (e.kind === 'depends_on' || e.kind === 'order') continue;
          const fr = resourceOf(e.from, declared);
          if (fr && fr !== e.to && !resourceOf(e.to, declared))
            outside.set(`${e.from}\0${e.to}`, { from: e.from, to: e.to, kind: e.kind ?? 'implicit' });
        }
        const external = [...new Set([...outside.values()].map((e) => e.to))].sort();
        const lines = [
          'digraph opd {',
          '  rankdir=LR;',
          ...[...declared].sort().map((n) => `  ${dq(n)};`),
          ...parts.map((n) => `  ${dq(n)} [shape=box];`),
          ...external.map((n) => `  ${dq(n)} [style=dashed];`),
        ];
        for (const e of edges) lines.push(`  ${dq(e.from)} -> ${dq(e.to)} [label=${dq(e.kind)}];`);
        for (const e of [...outside.values()].sort((a, b) => (a.from + a.to < b.from + b.to ? -1 : 1)))
          lines.push(`  ${dq(e.from)} -> ${dq(e.to)} [label=${dq(e.kind)}, style=dashed];`);
        lines.push('}');
        stdio.out(lines.join('\n'));
        return 0;
      }),
    );
}
