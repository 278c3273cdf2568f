/** The command table of src/cli/main.ts: every subcommand loads from its module and answers --help. */
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';

const NAMES = [
  'validate',
  'diff',
  'apply',
  'show-plan',
  'confirm',
  'show',
  'graph',
  'audit',
  'daemon',
  'status',
  'doctor',
  'fleet',
  'completion',
];

async function help(args: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => (chunks.push(String(s)), true)) as typeof process.stdout.write;
  try {
    const code = await main(['node', 'opd', ...args, '--help'], { err: (s) => chunks.push(s) });
    return { code, out: chunks.join('') };
  } finally {
    process.stdout.write = write;
  }
}

describe('the command table', () => {
  it('lists every subcommand in the top-level help', async () => {
    const { code, out } = await help([]);
    expect(code).toBe(0);
    for (const n of NAMES) expect(out).toMatch(new RegExp(`^  ${n} `, 'm'));
  });

  it.each(NAMES)('loads %s from its module and prints its own usage', async (name) => {
    const { code, out } = await help([name]);
    expect(code).toBe(0);
    expect(out).toContain(`Usage: opd ${name}`);
  });

  it('gives the fragment options of fleet put, diff and rollout from one table', async () => {
    for (const sub of ['put', 'diff', 'rollout']) {
      const { out } = await help(['fleet', sub]);
      for (const flag of ['--host <name>', '--selector <k=v>', '--order <n>', '--id <id>']) expect(out).toContain(flag);
    }
  });
});
