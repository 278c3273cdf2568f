/**
 * README's quick start ("Five minutes with opd") is run as written, from the checkout's root, with
 * the checkout's opd first on PATH (the README's `alias opd=…`): its sandbox is the demo's private
 * Open vSwitch (scripts/backends/ovs.sh: ovsdb-server and ovs-vswitchd in a directory and a network
 * namespace of their own); each command's output must be what README shows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consoleCommands, outputMatches, Session } from '../helpers/doc-blocks.js';
import { ROOT } from '../helpers/opd.js';
import { cleanEnv, report } from '../helpers/doc-env.js';

const PAGE = 'README.md';
const SECTION = 'Five minutes with opd';
const commands = consoleCommands(readFileSync(join(ROOT, PAGE), 'utf8'), SECTION);
/** The sandbox directory the quick start uses (its first command brings it up). */
const SANDBOX = /ovs\.sh up (\S+)/.exec(commands[0]?.command ?? '')?.[1];
let session: Session | undefined;

afterAll(async () => {
  // README's last command takes the sandbox down; this is for a run that stopped half-way
  if (session && SANDBOX) await session.run(`bash scripts/backends/ovs.sh down ${SANDBOX} >/dev/null 2>&1; true`);
  session?.close();
});

describe(`README's quick start ("${SECTION}")`, () => {
  it('brings up a private Open vSwitch first and takes it down last', () => {
    expect(SANDBOX).toMatch(/^\/tmp\//);
    expect(commands.at(-1)!.command).toContain(`ovs.sh down ${SANDBOX}`);
    expect(commands.length).toBeGreaterThan(8);
  });

  it('prints what README shows for every command, run in order in one shell', async () => {
    session = new Session(cleanEnv());
    // a sandbox left behind by an interrupted run would make `ovs.sh up` reuse stale daemons
    await session.run(`bash scripts/backends/ovs.sh down ${SANDBOX} >/dev/null 2>&1; true`);
    for (const c of commands) {
      const r = await session.run(c.command);
      if (!outputMatches(c.expected, r.output)) expect.fail(report(PAGE, c, r));
    }
  });
});
