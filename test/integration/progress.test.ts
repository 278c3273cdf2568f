/**
 * Live progress of `opd apply` (issue 26.2): a 2,000-file apply under --root prints its first
 * change line while the wave is still writing — within 1 s of the first write — through a pipe
 * and on a pseudo-terminal (util-linux `script`, no native module), with a counter on the terminal.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, doc, opd, tmp } from '../helpers/opd.js';

const N = 2000;

function bigDoc(n: number): string {
  const lines = ['version: 1', 'plugins:', '  files:', '    paths:'];
  for (let i = 0; i < n; i++) lines.push(`      /srv/f${String(i).padStart(4, '0')}.conf: { content: "n=${i}\\n" }`);
  return doc(lines.join('\n') + '\n');
}

interface Watched {
  code: number;
  out: string;
  /** when the first `ok` line arrived (epoch ms) and how many files existed then */
  firstLineAt: number;
  filesThen: number;
}

/** Run argv, watching its output for the first change line. */
function watch(argv: string[], env: Record<string, string>, srv: string): Promise<Watched> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { env: { ...process.env, OPD_LOG_LEVEL: 'warn', ...env } });
    let out = '';
    let firstLineAt = 0;
    let filesThen = -1;
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (!firstLineAt && /ok\S*\s+(\S+ )?\+ files\/paths\/srv\/f/.test(out)) {
        firstLineAt = Date.now();
        filesThen = readdirSync(srv).length;
      }
    });
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out, firstLineAt, filesThen }));
  });
}

function firstWrite(srv: string): number {
  return Math.min(...readdirSync(srv).map((f) => statSync(join(srv, f)).mtimeMs));
}

describe('opd apply: live progress', () => {
  const file = bigDoc(N);

  it('prints the first change line of a 2,000-file wave within 1 s of the first write, through a pipe', async () => {
    const root = tmp('opd-progress-');
    const srv = join(root, 'srv');
    const w = watch(['node', OPD, 'apply', file, '--no-content'], { OPD_ROOT: root }, root);
    const r = await w;
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(readdirSync(srv)).toHaveLength(N);
    expect(r.firstLineAt).toBeGreaterThan(0);
    // the line came while the wave was still writing, not at its end
    expect(r.filesThen).toBeLessThan(N);
    expect(r.firstLineAt - firstWrite(srv)).toBeLessThan(1000);
    expect(r.out.match(/^ok +\+ files\/paths\/srv\/f\d{4}\.conf: create file/gm)).toHaveLength(N);
    expect(r.out).not.toContain('\x1b['); // a pipe gets neither colour nor a status line
  });

  it('does the same on a pseudo-terminal, with a [done/total] counter line rewritten in place and colour', async () => {
    const root = tmp('opd-progress-pty-');
    const srv = join(root, 'srv');
    // script(1) gives opd a pty for its stdout; -e: its exit status, -f: flush as it comes
    const cmd = ['node', OPD, 'apply', file, '--no-content'].map((a) => `'${a}'`).join(' ');
    const r = await watch(['script', '-qfec', cmd, '/dev/null'], { OPD_ROOT: root, TERM: 'xterm' }, root);
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(readdirSync(srv)).toHaveLength(N);
    expect(r.filesThen).toBeLessThan(N);
    expect(r.firstLineAt - firstWrite(srv)).toBeLessThan(1000);
    expect(r.out).toContain('\r\x1b[2K\x1b[2m[');
    expect(r.out).toMatch(/\[[\d,]+\/2,000\]/);
    expect(r.out).toContain('\x1b[32mok     \x1b[39m + files/paths/srv/f0000.conf');
  });

  it('prints only the summary with --quiet', async () => {
    const root = tmp('opd-progress-q-');
    const r = await opd(['apply', bigDoc(60), '--quiet'], { env: { OPD_ROOT: root } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('files/paths/srv/f0000.conf');
    expect(r.stdout).toMatch(/applied: 60 ok, 0 failed/);
  });
});
