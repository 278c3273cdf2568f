/**
 * The console: colour on a terminal (off with NO_COLOR or --no-color), changes with their content
 * diffs, JSON outputs with their format_version, errors as JSON in JSON mode.
 */
import { Option, type Command } from 'commander';
import { FORMAT_VERSION, formatChange } from '../core/plan.js';
import type { OpdError } from '../core/errors.js';
import { stdio } from './common.js';

export interface Style {
  color: boolean;
}

const CODES: Record<string, [number, number]> = {
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
  bold: [1, 22],
  dim: [2, 22],
};

/** Colour when stdout is a terminal, NO_COLOR is unset (https://no-color.org) and --no-color was not given. */
export function styleFor(o: Record<string, unknown>, stream: { isTTY?: boolean } = process.stdout): Style {
  const noColor = o.color === false || (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '');
  const forced = process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0';
  return { color: !noColor && (stream.isTTY === true || forced) };
}

export function paint(st: Style, color: keyof typeof CODES, s: string): string {
  if (!st.color || !s) return s;
  const [a, b] = CODES[color];
  return `\x1b[${a}m${s}\x1b[${b}m`;
}

/** The colour of a change line by its mark: create green, delete red, change yellow, refused/failed red and bold. */
export function paintChangeLine(st: Style, line: string): string {
  if (!st.color) return line;
  const m = line[0];
  if (m === '+') return paint(st, 'green', line);
  if (m === '-') return paint(st, 'red', line);
  if (m === '~') return paint(st, 'yellow', line);
  if (m === '!') return paint(st, 'red', paint(st, 'bold', line));
  return line;
}

/** A change's diff (and its note) for the console, indented under the change, coloured on a terminal. */
export function diffLines(st: Style, diff: string | undefined, note: string | undefined, indent = '    '): string[] {
  const out: string[] = [];
  for (const l of (diff ?? '').split('\n')) {
    if (!l) continue;
    const c =
      l.startsWith('+++') || l.startsWith('---')
        ? paint(st, 'bold', l)
        : l.startsWith('+')
          ? paint(st, 'green', l)
          : l.startsWith('-')
            ? paint(st, 'red', l)
            : l.startsWith('@@')
              ? paint(st, 'cyan', l)
              : l;
    out.push(indent + c);
  }
  if (note) out.push(indent + paint(st, 'dim', `(${note})`));
  return out;
}

/** A planned change for the console: its line, then its content diff. */
export function changeText(
  st: Style,
  c: Parameters<typeof formatChange>[0] & { diff?: string; diff_note?: string },
): string {
  return [paintChangeLine(st, formatChange(c)), ...diffLines(st, c.diff, c.diff_note)].join('\n');
}

/** `--no-content` (diff, apply, show-plan… : whatever shows changes). */
export function noContentOption(): Option {
  return new Option('--no-content', 'do not show content diffs (file content, unit files, XML, LXC config, scripts)');
}

/** `--no-color` (also NO_COLOR=1). Colour is only ever used on a terminal. */
export function noColorOption(): Option {
  return new Option('--no-color', 'no colour on a terminal (also NO_COLOR=1)');
}

export function addConsoleOptions(cmd: Command, content = true): Command {
  if (content) cmd.addOption(noContentOption());
  return cmd.addOption(noColorOption());
}

/** A JSON output: `format_version` first, then the fields. */
export function printJSON(fields: object): void {
  stdio.out(JSON.stringify({ format_version: FORMAT_VERSION, ...fields }, null, 2));
}

/** An error in JSON mode: the same JSON object on stdout as the human text on stderr. */
export function errorJSON(e: OpdError): object {
  return { format_version: FORMAT_VERSION, error: { ...e.toJSON(), exit_code: e.exitCode } };
}

/** Whether a command line asks for JSON output (`-o json`, `--output json`, `--output=json`, `-ojson`). */
export function wantsJSON(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '-o' || a === '--output') && argv[i + 1] === 'json') return true;
    if (a === '--output=json' || a === '-ojson') return true;
    if (a === '--') break;
  }
  return false;
}
