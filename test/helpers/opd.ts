/** Spawn the built `opd` (bin/opd.js → dist/) the way a user does. */
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const OPD = join(ROOT, 'bin/opd.js');

export interface OpdRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function opd(
  args: string[],
  opts: { env?: Record<string, string>; input?: string; timeout?: number } = {},
): Promise<OpdRun> {
  const r = await execa('node', [OPD, ...args], {
    reject: false,
    env: { OPD_LOG_LEVEL: 'warn', ...opts.env },
    input: opts.input,
    timeout: opts.timeout ?? 300_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export function tmp(prefix = 'opd-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Write a document into a fresh temp dir and return its path. */
export function doc(text: string, dir = tmp(), name = 'state.yaml'): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** A unique short suffix for resource names (interface names are at most 15 characters). */
export function uniq(n = 4): string {
  return Math.random()
    .toString(36)
    .slice(2, 2 + n);
}
