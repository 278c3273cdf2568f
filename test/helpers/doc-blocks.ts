/**
 * Tested documentation: the ```console blocks of a Markdown page, run in order in one bash
 * session (so `export` and `cd` carry over), each command's output (stdout and stderr, as a
 * terminal shows them) compared with the lines shown under it. In a shown line `…` stands for
 * any text (times, run ids, temp paths). Consecutive change lines (`ok + …`, `+ …`) may come in
 * any order: plugins apply side by side, so their completion order varies between runs.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPD, ROOT } from './opd.js';

export interface DocCommand {
  /** The command as typed (continuation lines and here-document bodies included). */
  command: string;
  /** The lines shown under it. */
  expected: string[];
  /** Line number in the page, for the failure message. */
  line: number;
}

/** The console blocks of `markdown`, or only those of the section headed `section` (up to the next heading of its level or above). */
export function consoleCommands(markdown: string, section?: string): DocCommand[] {
  let lines = markdown.split('\n');
  let offset = 0;
  if (section) {
    const at = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+ /, '') === section);
    if (at < 0) throw new Error(`no section "${section}"`);
    const level = /^#+/.exec(lines[at])![0].length;
    const end = lines.findIndex((l, i) => i > at && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
    lines = lines.slice(at, end < 0 ? undefined : end);
    offset = at;
  }
  const out: DocCommand[] = [];
  let inBlock = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (!inBlock) {
      if (/^```console\s*$/.test(l)) inBlock = true;
      continue;
    }
    if (/^```\s*$/.test(l)) {
      inBlock = false;
      continue;
    }
    if (l.startsWith('$ ')) {
      let command = l.slice(2);
      const line = offset + i + 1;
      while (command.endsWith('\\') && i + 1 < lines.length) command = command.slice(0, -1) + '\n' + lines[++i];
      const heredoc = /<<-?\s*'?"?(\w+)'?"?/.exec(command);
      if (heredoc) {
        do command += '\n' + lines[++i];
        while (i < lines.length && lines[i].trim() !== heredoc[1]);
      }
      out.push({ command, expected: [], line });
    } else if (out.length) out.at(-1)!.expected.push(l);
    else throw new Error(`line ${offset + i + 1}: output before any command in a console block`);
  }
  return out;
}

const CHANGE_LINE = /^(ok|failed|skipped|refused|blocked)\s+[+~!?-] |^[+~!?-] [a-z]+\//;

/** Sort each run of consecutive change lines (their order is the order changes completed in). */
function sortChangeRuns(lines: string[]): string[] {
  const out: string[] = [];
  let run: string[] = [];
  const flush = () => (out.push(...run.sort()), (run = []));
  for (const l of lines) {
    if (CHANGE_LINE.test(l)) run.push(l);
    else {
      flush();
      out.push(l);
    }
  }
  flush();
  return out;
}

function pattern(shown: string): RegExp {
  const parts = shown.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*?')}$`);
}

const lineMatches = (shown: string, actual: string) => pattern(shown.trimEnd()).test(actual.trimEnd());

/** Whether the output matches the shown lines, in order or with change runs reordered. */
export function outputMatches(expected: string[], actual: string[]): boolean {
  const same = (e: string[], a: string[]) => e.length === a.length && e.every((l, i) => lineMatches(l, a[i]));
  if (same(expected, actual)) return true;
  // wildcards make sorting ambiguous: compare each shown run against every order of the actual run
  const e = sortChangeRuns(expected);
  const a = sortChangeRuns(actual.map((l) => l));
  if (same(e, a)) return true;
  // a run whose shown lines carry wildcards: match as a multiset
  if (e.length !== a.length) return false;
  const left = [...a];
  return e.every((l) => {
    const k = left.findIndex((x) => lineMatches(l, x));
    return k >= 0 && left.splice(k, 1).length === 1;
  });
}

/** A bash session with `opd` (this checkout's bin/opd.js) first on PATH, in the repository's root. */
export class Session {
  private sh: ChildProcessWithoutNullStreams;
  private buf = '';
  private waiting?: { resolve: (v: { output: string[]; code: number }) => void; timer: NodeJS.Timeout };

  constructor(env: Record<string, string | undefined> = {}, cwd = ROOT) {
    const bin = mkdtempSync(join(tmpdir(), 'opd-doc-bin-'));
    symlinkSync(OPD, join(bin, 'opd'));
    this.sh = spawn('bash', ['--noprofile', '--norc'], {
      cwd,
      env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}`, LC_ALL: 'C.UTF-8', TERM: 'dumb' },
    });
    this.sh.stdout.on('data', (d: Buffer) => this.data(d.toString()));
    this.sh.stdin.write('exec 2>&1\n');
  }

  private data(s: string): void {
    this.buf += s;
    const m = /\n@@OPD-DOC-DONE (\d+)@@\n/.exec(this.buf);
    if (!m || !this.waiting) return;
    let text = this.buf.slice(0, m.index);
    this.buf = this.buf.slice(m.index + m[0].length);
    if (text.endsWith('\n')) text = text.slice(0, -1);
    const { resolve, timer } = this.waiting;
    this.waiting = undefined;
    clearTimeout(timer);
    resolve({ output: text === '' ? [] : text.split('\n'), code: Number(m[1]) });
  }

  /** Run one command (stdin from /dev/null); its output lines and exit status. */
  run(command: string, timeoutMs = 180_000): Promise<{ output: string[]; code: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${command}`)), timeoutMs);
      this.waiting = { resolve, timer };
      this.sh.stdin.write(
        `{ ${command}\n} </dev/null\n__opd_rc=$?; printf '\\n@@OPD-DOC-DONE %d@@\\n' "$__opd_rc"; (exit $__opd_rc)\n`,
      );
    });
  }

  close(): void {
    this.sh.stdin.end();
  }
}
