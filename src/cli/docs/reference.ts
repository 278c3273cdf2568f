/**
 * The command line as data, read from the commander definitions that `--help` prints: every
 * command, subcommand, argument and option. opd(1), opd-daemon(8), docs/cli.md and the shell
 * completions are made from it, so a flag added to a command appears in all of them.
 */
import { Command, Help, Option } from 'commander';

export interface OptionDoc {
  /** As --help shows it: `-o, --output <format>`. */
  flags: string;
  long?: string;
  short?: string;
  description: string;
  /** `<file>`, `<names...>`: the value it takes, if any. */
  value?: string;
  variadic: boolean;
  /** `--no-watch` style. */
  negate: boolean;
  default?: unknown;
  choices?: string[];
  /** Environment variables the description names (`env OPD_OVS_DB`). */
  env: string[];
}

export interface ArgumentDoc {
  name: string;
  description: string;
  required: boolean;
  variadic: boolean;
  choices?: string[];
}

export interface CommandDoc {
  name: string;
  /** From the top: ['opd', 'audit', 'verify']. */
  path: string[];
  usage: string;
  description: string;
  args: ArgumentDoc[];
  options: OptionDoc[];
  commands: CommandDoc[];
  /** Text the command adds after its help (`addHelpText('after', …)`): exit codes, examples. */
  after: string;
}

const ENV = /\bOPD_[A-Z0-9_]+(?:<[a-z]+>)?/g;

function optionDoc(o: Option): OptionDoc {
  const value = /[<[][^>\]]+[>\]]/.exec(o.flags)?.[0];
  return {
    flags: o.flags,
    ...(o.long ? { long: o.long } : {}),
    ...(o.short ? { short: o.short } : {}),
    description: o.description,
    ...(value ? { value } : {}),
    variadic: o.variadic,
    negate: o.negate,
    ...(o.defaultValue !== undefined && !o.negate ? { default: o.defaultValue } : {}),
    ...(o.argChoices ? { choices: [...o.argChoices] } : {}),
    env: [...new Set([...(o.envVar ? [o.envVar] : []), ...(o.description.match(ENV) ?? [])])],
  };
}

/** The text a command prints after its help (captured from commander's help events). */
function afterText(cmd: Command): string {
  let all = '';
  const saved = cmd.configureOutput();
  cmd.configureOutput({ ...saved, writeOut: (s) => (all += s), writeErr: (s) => (all += s) });
  try {
    cmd.outputHelp();
  } finally {
    cmd.configureOutput(saved);
  }
  const own = cmd.helpInformation();
  const at = all.indexOf(own);
  return (at >= 0 ? all.slice(at + own.length) : '').replace(/^\n+|\s+$/g, '');
}

export function describeCommand(cmd: Command, parents: string[] = []): CommandDoc {
  const help = new Help();
  const path = [...parents, cmd.name()];
  return {
    name: cmd.name(),
    path,
    usage: `${path.join(' ')} ${cmd.usage()}`.trim(),
    description: cmd.description(),
    args: cmd.registeredArguments.map((a) => ({
      name: a.name(),
      description: a.description,
      required: a.required,
      variadic: a.variadic,
      ...(a.argChoices ? { choices: [...a.argChoices] } : {}),
    })),
    options: help.visibleOptions(cmd).map(optionDoc),
    commands: help
      .visibleCommands(cmd)
      .filter((c) => c.name() !== 'help')
      .map((c) => describeCommand(c, path)),
    after: afterText(cmd),
  };
}

/** Every command below (and including) this one, depth first. */
export function allCommands(c: CommandDoc): CommandDoc[] {
  return [c, ...c.commands.flatMap(allCommands)];
}

/** Every environment variable the options name, sorted. */
export function optionEnv(c: CommandDoc): string[] {
  return [...new Set(allCommands(c).flatMap((x) => x.options.flatMap((o) => o.env)))].sort();
}
