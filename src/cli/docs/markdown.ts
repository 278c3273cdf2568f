/**
 * The generated parts of docs/: the CLI reference (docs/cli.md), one field table per plugin
 * (docs/plugins/<name>.md), the exit codes, the environment, the daemon's D-Bus API and metrics.
 * A page keeps its hand-written text; only the regions between
 * `<!-- BEGIN generated: NAME -->` and `<!-- END generated: NAME -->` are rewritten by
 * `npm run docs`, and a test fails while a committed page differs from what would be generated.
 */
import { EXIT_CODES } from '../../core/exit-codes.js';
import { allCommands, type CommandDoc } from './reference.js';
import type { FieldDoc, SectionDoc, SchemaWalker } from './schema-doc.js';
import { ENV_EXTRA, FILES, type DaemonApiDoc, type MetricDoc } from './man.js';

/** Text outside code spans with `<` and `>` escaped (a forge would take `<name>` for an HTML tag and hide it). */
export function escapeHtml(s: string): string {
  return s
    .split(/(`+[^`]*`+)/)
    .map((part, i) => (i % 2 ? part : part.replace(/</g, '&lt;').replace(/>/g, '&gt;')))
    .join('');
}

/** A table cell: one line, `|` escaped, `<` outside code escaped. */
function cell(s: string): string {
  return escapeHtml(s.replace(/\s*\n\s*/g, ' ')).replace(/\|/g, '\\|');
}

/** Inline code that survives backticks inside. */
function codeSpan(s: string): string {
  const ticks = s.includes('`') ? '``' : '`';
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${s}${pad}${ticks}`;
}

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

function anchor(c: CommandDoc): string {
  return c.path.slice(1).join('-') || 'opd';
}

function commandMarkdown(c: CommandDoc): string {
  const out = [`### ${c.path.join(' ')}`, '', escapeHtml(c.description), '', '```', c.usage, '```'];
  if (c.args.length)
    out.push(
      '',
      table(
        ['argument', 'description'],
        c.args.map((a) => [
          codeSpan(`${a.required ? '<' : '['}${a.name}${a.variadic ? '...' : ''}${a.required ? '>' : ']'}`),
          (a.description || '') + (a.choices ? ` (one of: ${a.choices.join(', ')})` : ''),
        ]),
      ),
    );
  if (c.options.length)
    out.push(
      '',
      table(
        ['option', 'description', 'default'],
        c.options.map((o) => [
          codeSpan(o.flags),
          o.description + (o.choices ? ` (one of: ${o.choices.join(', ')})` : ''),
          o.default === undefined || o.default === false ? '' : codeSpan(String(o.default)),
        ]),
      ),
    );
  if (c.commands.length)
    out.push('', 'Subcommands: ' + c.commands.map((s) => `[${s.name}](#${anchor(s)})`).join(', ') + '.');
  if (c.after) out.push('', '```text', c.after, '```');
  return out.join('\n');
}

export function exitCodeTable(): string {
  return table(
    ['exit', 'meaning', 'what to do'],
    EXIT_CODES.map((e) => [`**${e.code}**`, e.meaning, e.fix]),
  );
}

export function envTable(root: CommandDoc): string {
  const byEnv = new Map<string, string>();
  for (const c of allCommands(root))
    for (const o of c.options)
      for (const e of o.env) if (!byEnv.has(e)) byEnv.set(e, `${codeSpan(o.long ?? o.short!)}`);
  const rows: string[][] = [...byEnv].map(([e, flag]) => [codeSpan(e), `the default of ${flag}`]);
  for (const [k, v] of Object.entries(ENV_EXTRA)) if (!byEnv.has(k)) rows.push([codeSpan(k), v]);
  return table(
    ['variable', 'what it sets'],
    rows.sort((a, b) => a[0].localeCompare(b[0])),
  );
}

export function filesTable(): string {
  return table(
    ['file', 'what it is'],
    FILES.map(([f, d]) => [codeSpan(f), d]),
  );
}

/** docs/cli.md's reference: every command, its arguments and options, in the order of `opd --help`. */
export function cliReference(root: CommandDoc): string {
  const cmds = allCommands(root).slice(1);
  const toc = cmds.map((c) => `${'  '.repeat(c.path.length - 2)}- [${c.path.slice(1).join(' ')}](#${anchor(c)})`);
  const global = table(
    ['option', 'description'],
    root.options.map((o) => [codeSpan(o.flags), o.description]),
  );
  return [
    toc.join('\n'),
    '',
    '## Global options',
    '',
    global,
    '',
    '## Commands',
    '',
    cmds.map((c) => `<a id="${anchor(c)}"></a>\n\n${commandMarkdown(c)}`).join('\n\n'),
    '',
    '## Exit codes',
    '',
    exitCodeTable(),
    '',
    '## Environment',
    '',
    envTable(root),
    '',
    '## Files',
    '',
    filesTable(),
  ].join('\n');
}

function example(v: unknown): string {
  return v === undefined ? '' : codeSpan(JSON.stringify(v));
}

function fieldRow(f: FieldDoc): string[] {
  const desc =
    (f.description ?? '') +
    (f.secret ? ' **Secret**: masked in output, logs and the audit trail.' : '') +
    (f.refused && f.hint ? ` Refused: ${f.hint}.` : '');
  return [
    codeSpan(f.path),
    f.refused ? 'refused' : codeSpan(f.type),
    f.default === undefined ? '' : codeSpan(JSON.stringify(f.default)),
    f.required ? 'yes' : '',
    desc,
    f.refused ? '' : example(f.example),
  ];
}

/** The generated part of docs/plugins/<name>.md: the schema's description, an example section, every field. */
export function pluginReference(s: SectionDoc, yaml: (v: unknown) => string): string {
  const out = [`Schema: [schema/${s.file}](../../schema/${s.file}) — ${escapeHtml(s.title)}.`];
  if (s.description) out.push('', escapeHtml(s.description));
  if (s.examples.length)
    out.push('', '```yaml', yaml({ version: 1, plugins: { [s.name]: s.examples[0] } }).trimEnd(), '```');
  out.push(
    '',
    `Every field (\`<name>\` stands for a key of your choice; \`[]\` marks a list item):`,
    '',
    table(['field', 'type', 'default', 'required', 'description', 'example'], s.fields.map(fieldRow)),
  );
  return out.join('\n');
}

/** The document's own fields (version, description, params, plugins). */
export function documentReference(s: SectionDoc, yaml: (v: unknown) => string): string {
  const out = [table(['field', 'type', 'default', 'required', 'description', 'example'], s.fields.map(fieldRow))];
  if (s.examples.length) out.push('', '```yaml', yaml(s.examples[0]).trimEnd(), '```');
  return out.join('\n');
}

export function pluginIndex(w: SchemaWalker): string {
  const rows = w.plugins().map((n) => {
    const s = w.section(n);
    return [`[${n}](${n}.md)`, s.title.replace(/^[a-z]+ plugin: /, ''), String(s.fields.length)];
  });
  const refused = w.refused().map((r) => [codeSpan(r.name), r.description, r.hint]);
  return [
    table(['plugin', 'what it manages', 'fields'], rows),
    '',
    'op-dbus plugins opd refuses by name (exit 65, with what to use instead):',
    '',
    table(['section', 'why', 'instead'], refused),
  ].join('\n');
}

export function apiTable(api: DaemonApiDoc): string {
  const rows: string[][] = [];
  for (const o of api.objects) {
    for (const m of o.methods)
      rows.push([codeSpan(o.name), codeSpan(o.interface), codeSpan(`${m.name}(${m.in}) → ${m.out || '()'}`), m.doc]);
    for (const s of o.signals)
      rows.push([codeSpan(o.name), codeSpan(o.interface), codeSpan(`signal ${s.name}(${s.type})`), s.doc]);
  }
  return (
    api.objects
      .map((o) => `- ${codeSpan(o.name)} at ${codeSpan(o.path)}, interface ${codeSpan(o.interface)}`)
      .join('\n') +
    '\n\n' +
    table(['bus name', 'interface', 'member', 'what it does'], rows)
  );
}

export function metricsTable(metrics: MetricDoc[]): string {
  return table(
    ['metric', 'type', 'labels', 'what it counts'],
    metrics.map((m) => [codeSpan(m.name), m.type, m.labels.join(', '), m.help]),
  );
}

/** Replace the generated regions of a page; a region the page lacks is an error (the page was edited wrongly). */
export function fillRegions(text: string, regions: Record<string, string>, file: string): string {
  let out = text;
  for (const [name, body] of Object.entries(regions)) {
    const re = new RegExp(`(<!-- BEGIN generated: ${name} [^>]*-->\\n)[\\s\\S]*?(<!-- END generated: ${name} -->)`);
    if (!re.test(out)) throw new Error(`${file}: no generated region "${name}" (<!-- BEGIN generated: ${name} … -->)`);
    out = out.replace(re, (_m, a: string, b: string) => `${a}${body}\n${b}`);
  }
  return out;
}

export function region(name: string, body: string): string {
  return `<!-- BEGIN generated: ${name} (npm run docs; do not edit by hand) -->\n${body}\n<!-- END generated: ${name} -->`;
}
