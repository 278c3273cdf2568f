/**
 * Shell completion. `opd completion bash|zsh|fish` prints a small script for the shell; on Tab
 * that script runs `opd __complete -- WORD…` (the words after `opd`, the last one being completed)
 * and shows what it prints. The candidates come from the live command definitions (the same ones
 * --help prints), so a new command or flag completes without touching the scripts: subcommands,
 * flags, flag values (choices; plugin names for --only/--plugin; resource addresses of the
 * document on the command line for --target and any option whose value is an address), files.
 *
 * Output of __complete: a first line `:files`, `:dirs`, `:nospace` or `:plain` (what the shell
 * does besides the candidates), then one candidate per line, `value<TAB>description`.
 */
import { Argument, Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { act, stdio } from './common.js';
import { describeCommand, type CommandDoc, type OptionDoc } from './docs/reference.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

type Directive = ':files' | ':dirs' | ':nospace' | ':plain';
interface Completion {
  directive: Directive;
  candidates: [value: string, description: string][];
}

/** What a flag's value is, from its definition: its choices, its value name, its long name. */
function valueKind(o: OptionDoc): 'choices' | 'plugins' | 'addresses' | 'paths' | 'dirs' | 'none' {
  if (o.choices?.length) return 'choices';
  const v = (o.value ?? '').toLowerCase();
  if (o.long === '--target' || /address/.test(v)) return 'addresses';
  if (o.long === '--only' || o.long === '--plugin' || /plugin/.test(v)) return 'plugins';
  if (/dir/.test(v)) return 'dirs';
  if (/file|path|plan|\.json|\.yaml|socket/.test(v)) return 'paths';
  return 'none';
}

/** Whether a flag takes a list in one word (`--only a,b`) rather than several words (`--plugin a b`). */
const commaList = (o: OptionDoc) => !o.variadic && /s>$|,/.test(o.value ?? '');

/** Whether a positional argument names a file (the document, a plan). */
const fileArgument = (name: string) => /file|plan|document/.test(name);

function findOption(c: CommandDoc, word: string): OptionDoc | undefined {
  return c.options.find((o) => o.long === word || o.short === word);
}

interface Parsed {
  cmd: CommandDoc;
  /** Positional words given to the command so far. */
  positionals: string[];
  /** Flags given so far (long names), with their values. */
  given: Map<string, string[]>;
  /** A variadic flag still taking values (`--plugin a b` …). */
  open?: OptionDoc;
}

/** Walk the words before the one being completed: which command, which flags and arguments so far. */
function parse(root: CommandDoc, words: string[]): Parsed {
  const p: Parsed = { cmd: root, positionals: [], given: new Map() };
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '--') {
      p.open = undefined;
      p.positionals.push(...words.slice(i + 1));
      break;
    }
    if (w.startsWith('-') && w !== '-') {
      const [flag, inline] = w.includes('=') ? [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] : [w];
      const o = findOption(p.cmd, flag);
      p.open = undefined;
      if (!o) continue;
      const key = o.long ?? o.short!;
      const values = p.given.get(key) ?? [];
      p.given.set(key, values);
      if (!o.value) continue;
      if (inline !== undefined) values.push(inline);
      else if (i + 1 < words.length) values.push(words[++i]);
      if (o.variadic) p.open = o;
      continue;
    }
    if (p.open) {
      p.given.get(p.open.long ?? p.open.short!)!.push(w);
      continue;
    }
    const sub = !p.positionals.length ? p.cmd.commands.find((c) => c.name === w) : undefined;
    if (sub) p.cmd = sub;
    else p.positionals.push(w);
  }
  return p;
}

/** The document a command line names: its file argument, or --state. */
function documentOf(p: Parsed): string | undefined {
  const fileArgs = p.cmd.args.filter((a) => fileArgument(a.name));
  const candidates = [...(fileArgs.length ? p.positionals : []), ...(p.given.get('--state') ?? [])];
  return candidates.find((f) => /\.(ya?ml|json)$/i.test(f) && existsSync(f) && statSync(f).isFile());
}

/** The resource addresses of a document (plugin/collection/name), from its normalized form when it is valid. */
export async function addressesOf(file: string): Promise<string[]> {
  const { registry } = await import('../plugins/index.js');
  const { isObj } = await import('../core/diff.js');
  let plugins: Record<string, unknown>;
  try {
    const { prepareFile } = await import('../core/engine.js');
    plugins = (await prepareFile(registry, file)).doc.plugins;
  } catch {
    // an invalid document (or one whose parameters are unset): its sections as written
    const { loadDocument } = await import('../core/document.js');
    const raw = (await loadDocument(file)).raw;
    plugins = isObj(raw) && isObj(raw.plugins) ? raw.plugins : {};
  }
  const out: string[] = [];
  for (const name of Object.keys(plugins).filter((n) => registry.names.includes(n))) {
    const section = plugins[name];
    if (!isObj(section)) continue;
    const plugin = (await registry.loadFor([name])).get(name);
    for (const c of plugin?.collections ?? [])
      if (isObj(section[c]))
        for (const key of Object.keys(section[c] as object)) if (!key.includes('${')) out.push(`${name}/${c}/${key}`);
  }
  return out.sort();
}

async function optionValues(o: OptionDoc, cur: string, p: Parsed): Promise<Completion> {
  const kind = valueKind(o);
  if (kind === 'paths') return { directive: ':files', candidates: [] };
  if (kind === 'dirs') return { directive: ':dirs', candidates: [] };
  let values: [string, string][] = [];
  if (kind === 'choices') values = o.choices!.map((c) => [c, '']);
  if (kind === 'plugins') {
    const { PLUGIN_NAMES } = await import('../plugins/index.js');
    values = PLUGIN_NAMES.map((n) => [n, 'plugin']);
  }
  if (kind === 'addresses') {
    const file = documentOf(p);
    values = file ? (await addressesOf(file)).map((a) => [a, 'resource']) : [];
  }
  if (!commaList(o) || kind === 'choices') {
    // a variadic flag's earlier values are not offered again
    const taken = new Set(o.variadic ? (p.given.get(o.long ?? o.short!) ?? []) : []);
    return { directive: ':plain', candidates: values.filter(([v]) => v.startsWith(cur) && !taken.has(v)) };
  }
  // a comma-separated list: complete its last element, keep what is before it
  const head = cur.includes(',') ? cur.slice(0, cur.lastIndexOf(',') + 1) : '';
  const taken = new Set(head.split(',').filter(Boolean));
  return {
    directive: ':nospace',
    candidates: values
      .filter(([v]) => !taken.has(v))
      .map(([v, d]): [string, string] => [head + v, d])
      .filter(([v]) => v.startsWith(cur)),
  };
}

/** The candidates for the last word of `words` (the words after `opd`). */
export async function complete(root: CommandDoc, words: string[]): Promise<Completion> {
  const before = words.slice(0, -1);
  const cur = words.at(-1) ?? '';
  const p = parse(root, before);
  const last = before.at(-1);
  // the value of a flag: `--only ne`, `--only=ne`
  if (cur.startsWith('--') && cur.includes('=')) {
    const o = findOption(p.cmd, cur.slice(0, cur.indexOf('=')));
    if (o?.value) {
      const prefix = cur.slice(0, cur.indexOf('=') + 1);
      const r = await optionValues(o, cur.slice(prefix.length), p);
      return { ...r, candidates: r.candidates.map(([v, d]) => [prefix + v, d]) };
    }
  }
  if (last !== undefined && last.startsWith('-') && !last.includes('=')) {
    const o = findOption(p.cmd, last);
    // parse() took the flag's value from `before` only when there was one: the flag is last
    if (o?.value && !p.open) return optionValues(o, cur, p);
  }
  if (p.open && !cur.startsWith('-')) return optionValues(p.open, cur, p);
  const filter = (c: Completion): Completion => ({
    ...c,
    candidates: c.candidates.filter(([v]) => v.startsWith(cur)),
  });
  if (cur.startsWith('-')) {
    const flags: [string, string][] = [];
    for (const o of p.cmd.options) {
      const repeatable = o.variadic || /repeatable/.test(o.description);
      if (o.long && p.given.has(o.long) && !repeatable) continue;
      if (o.long) flags.push([o.long, o.description]);
      else if (o.short) flags.push([o.short, o.description]);
    }
    return filter({ directive: ':plain', candidates: flags });
  }
  if (p.cmd.commands.length && !p.positionals.length)
    return filter({ directive: ':plain', candidates: p.cmd.commands.map((c) => [c.name, c.description]) });
  const arg = p.cmd.args[Math.min(p.positionals.length, p.cmd.args.length - 1)];
  if (arg?.choices?.length) return filter({ directive: ':plain', candidates: arg.choices.map((c) => [c, '']) });
  if (arg && fileArgument(arg.name)) return { directive: ':files', candidates: [] };
  return { directive: ':plain', candidates: [] };
}

/** A description's first clause, on one line, at most 80 characters (a menu entry, not the help). */
function short(d: string): string {
  const one = d.replace(/\s+/g, ' ').split(/ \(|; |: /)[0];
  return one.length > 80 ? one.slice(0, 79) + '…' : one;
}

/** Print the candidates of `opd __complete -- WORD…`. */
/**
 * The command tree the build wrote to dist/commands.json (scripts/gen-docs.mjs, from the same
 * definitions): loading every command's module would cost a Tab most of a second (fleet's etcd
 * client alone), reading this costs a millisecond. Undefined when it is missing or of another version.
 */
export function commandsDoc(version: string): CommandDoc | undefined {
  try {
    const d = JSON.parse(readFileSync(new URL('../commands.json', import.meta.url), 'utf8')) as {
      version: string;
      root: CommandDoc;
    };
    return d.version === version ? d.root : undefined;
  } catch {
    return undefined;
  }
}

/** What the build writes to dist/commands.json. */
export function commandsJson(version: string, root: Command): string {
  return JSON.stringify({ version, root: describeCommand(root) }) + '\n';
}

export async function completeMain(root: CommandDoc, words: string[], out: (s: string) => void): Promise<number> {
  const r = await complete(root, words[0] === '--' ? words.slice(1) : words);
  // one line per candidate: tabs and newlines inside a description would break the protocol
  const lines = r.candidates.map(([v, d]) => (d ? `${v}\t${short(d)}` : v));
  out([r.directive, ...lines].join('\n'));
  return 0;
}

/** The script that makes `shell` ask opd for completions. */
export function script(shell: Shell): string {
  if (shell === 'bash')
    return `# bash completion for opd (generated by \`opd completion bash\`)
# Install: opd completion bash > /etc/bash_completion.d/opd, or source it from ~/.bashrc.
_opd_complete() {
  local line="\${COMP_LINE:0:COMP_POINT}" out directive cur prefix c
  local -a words
  read -r -a words <<< "$line"
  [[ $line == *[[:space:]] ]] && words+=("")
  cur="\${words[-1]}"
  # bash splits --flag=value at '=' (and ':'): the text it replaces is what follows the last of them
  prefix="\${cur%"\${cur##*[=:]}"}"
  out=$(command opd __complete -- "\${words[@]:1}" 2>/dev/null) || return 0
  directive="\${out%%$'\\n'*}"
  COMPREPLY=()
  case "$directive" in
    :files) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0 ;;
    :dirs) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return 0 ;;
    :nospace) compopt -o nospace 2>/dev/null ;;
  esac
  [[ $out == *$'\\n'* ]] || return 0
  while IFS= read -r c; do
    c="\${c%%$'\\t'*}"
    [[ $c == "$cur"* ]] && COMPREPLY+=("\${c#"$prefix"}")
  done <<< "\${out#*$'\\n'}"
  return 0
}
complete -F _opd_complete opd
`;
  if (shell === 'zsh')
    return `#compdef opd
# zsh completion for opd (generated by \`opd completion zsh\`)
# Install: opd completion zsh > "\${fpath[1]}/_opd", or: source <(opd completion zsh)
_opd() {
  local out directive
  local -a lines values
  out=$(command opd __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
  lines=("\${(@f)out}")
  directive=\${lines[1]}
  case $directive in
    :files) _files; return ;;
    :dirs) _files -/; return ;;
  esac
  local l v d
  for l in "\${(@)lines[2,-1]}"; do
    [[ -z $l ]] && continue
    v=\${l%%$'\\t'*}; d=\${l#*$'\\t'}; [[ $d == "$l" ]] && d=''
    values+=("\${v//:/\\\\:}\${d:+:$d}")
  done
  (( \${#values} )) || return 1
  if [[ $directive == :nospace ]]; then _describe -t values opd values -S ''; else _describe -t values opd values; fi
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then _opd "$@"; else compdef _opd opd; fi
`;
  return `# fish completion for opd (generated by \`opd completion fish\`)
# Install: opd completion fish > ~/.config/fish/completions/opd.fish
function __opd_complete
    set -l words (commandline -opc) (commandline -ct)
    set -e words[1]
    set -l out (command opd __complete -- $words 2>/dev/null)
    or return
    switch "$out[1]"
        case :files
            __fish_complete_path (commandline -ct)
            return
        case :dirs
            __fish_complete_directories (commandline -ct)
            return
    end
    printf '%s\\n' $out[2..-1]
end
complete -c opd -f -a '(__opd_complete)'
`;
}

export function completionCommand(): Command {
  return new Command('completion')
    .description('print the shell completion script for bash, zsh or fish (commands, flags, plugins, addresses)')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices([...SHELLS]))
    .addHelpText(
      'after',
      `
Install:
  bash  opd completion bash > /etc/bash_completion.d/opd      (or: source <(opd completion bash))
  zsh   opd completion zsh > "\${fpath[1]}/_opd"               (or: source <(opd completion zsh))
  fish  opd completion fish > ~/.config/fish/completions/opd.fish
The Debian package installs all three.`,
    )
    .action(
      act(async (shell: Shell) => {
        stdio.out(script(shell));
        return 0;
      }),
    );
}
