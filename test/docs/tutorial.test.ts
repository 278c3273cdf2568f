/**
 * docs/tutorial.md is run as written: every console block, in order, in one bash session, with
 * this checkout's opd first on PATH. Its sandbox is its own (a scratch --root, the network
 * namespace opd-tutorial, a scratch audit trail); each command's output must be what the page shows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consoleCommands, outputMatches, Session } from '../helpers/doc-blocks.js';
import { ROOT } from '../helpers/opd.js';
import { cleanEnv, report } from '../helpers/doc-env.js';

const PAGE = 'docs/tutorial.md';
const commands = consoleCommands(readFileSync(join(ROOT, PAGE), 'utf8'));
let session: Session | undefined;

afterAll(async () => {
  // the page cleans up after itself; this is for a run that stopped half-way
  await session?.run('cd /; ip netns del opd-tutorial 2>/dev/null; [ -d "$OPD_ROOT" ] && rm -rf "$OPD_ROOT"; true');
  session?.close();
});

describe('the tutorial (docs/tutorial.md)', () => {
  it('has console blocks to run, from the sandbox to its removal', () => {
    expect(commands.length).toBeGreaterThan(20);
    expect(commands[0].command).toMatch(/OPD_ROOT=/);
    expect(commands.at(-1)!.command).toMatch(/rm -rf/);
  });

  it('prints what the page shows for every command, run in order in one shell', async () => {
    // a namespace left behind by an interrupted run of this test would make `ip netns add` fail
    const pre = new Session(cleanEnv());
    await pre.run('ip netns del opd-tutorial 2>/dev/null; true');
    pre.close();
    session = new Session(cleanEnv());
    for (const c of commands) {
      const r = await session.run(c.command);
      if (!outputMatches(c.expected, r.output)) expect.fail(report(PAGE, c, r));
    }
  });
});
