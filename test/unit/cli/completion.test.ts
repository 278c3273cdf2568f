/**
 * What Tab offers (src/cli/completion.ts): candidates from the live command definitions, so a
 * command or flag added to the CLI completes without touching the shell scripts.
 */
import { Command, Option } from 'commander';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addressesOf, commandsDoc, complete } from '../../../src/cli/completion.js';
import { commandTree, version } from '../../../src/cli/main.js';
import { readFileSync } from 'node:fs';
import { describeCommand, type CommandDoc } from '../../../src/cli/docs/reference.js';
import { PLUGIN_NAMES } from '../../../src/plugins/index.js';

const ROOT = join(__dirname, '../../..');
const DEMO = join(ROOT, 'examples/demo.yaml');
let root: CommandDoc;

beforeAll(async () => {
  root = describeCommand(await commandTree());
});

const values = async (words: string[], r = root) => (await complete(r, words)).candidates.map(([v]) => v);

describe('the command tree completion reads', () => {
  it('is what the build wrote to dist/commands.json from the same definitions, so Tab need not load every command', () => {
    const built = JSON.parse(readFileSync(join(ROOT, 'dist/commands.json'), 'utf8')) as {
      version: string;
      root: unknown;
    };
    expect(built.version).toBe(version());
    expect(built.root).toEqual(JSON.parse(JSON.stringify(root)));
    expect(commandsDoc('0.0.0-another-version')).toBeUndefined();
  });
});

describe('completion of commands and flags', () => {
  it('offers every top-level command, and those that start with the word typed', async () => {
    const all = await values(['']);
    expect(all).toEqual(root.commands.map((c) => c.name));
    expect(all).toEqual(expect.arrayContaining(['validate', 'diff', 'apply', 'daemon', 'fleet', 'completion']));
    expect(await values(['di'])).toEqual(['diff']);
  });

  it('offers subcommands after a command that has them', async () => {
    expect(await values(['audit', ''])).toEqual(['verify', 'log']);
    expect(await values(['fleet', 'st'])).toEqual(['status']);
  });

  it("offers a command's own flags, each from its definition", async () => {
    const flags = await values(['apply', '--']);
    const apply = root.commands.find((c) => c.name === 'apply')!;
    expect(flags).toEqual(apply.options.map((o) => o.long).filter(Boolean));
    expect(flags).toEqual(expect.arrayContaining(['--dry-run', '--rollback', '--only', '--confirm', '--var']));
    expect(await values(['diff', '--ou'])).toEqual(['--output', '--out']);
  });

  it('does not offer a flag again once given, unless it is repeatable', async () => {
    const after = await values(['apply', 's.yaml', '--dry-run', '--var', 'a=1', '--']);
    expect(after).not.toContain('--dry-run');
    expect(after).toContain('--var');
  });

  it('offers the choices of a flag, and of an argument', async () => {
    expect(await values(['diff', '-o', ''])).toEqual(['text', 'json']);
    expect(await values(['show', '--output', 'y'])).toEqual(['yaml']);
    expect(await values(['completion', ''])).toEqual(['bash', 'zsh', 'fish']);
  });

  it('offers plugin names for --only, one comma-separated element at a time, without a space after', async () => {
    const r = await complete(root, ['apply', 'x.yaml', '--only', 'net,f']);
    expect(r.directive).toBe(':nospace');
    expect(r.candidates.map(([v]) => v)).toEqual(['net,files', 'net,firewall']);
    expect(await values(['apply', '--only', ''])).toEqual(PLUGIN_NAMES);
    expect(await values(['apply', '--only=sy'])).toEqual(['--only=sysctl', '--only=systemd']);
  });

  it('offers plugin names for --plugin, word after word, not the ones given', async () => {
    expect(await values(['show', '--plugin', 'o'])).toEqual(['openflow', 'ovs']);
    const next = await values(['show', '--plugin', 'ovs', '']);
    expect(next).not.toContain('ovs');
    expect(next).toContain('net');
  });

  it('leaves files to the shell where a command takes a document or a plan, and where a flag takes a file', async () => {
    expect((await complete(root, ['diff', 'exa'])).directive).toBe(':files');
    expect((await complete(root, ['show-plan', ''])).directive).toBe(':files');
    expect((await complete(root, ['apply', 'x.yaml', '--vars', ''])).directive).toBe(':files');
    expect((await complete(root, ['diff', 'x.yaml', '--root', ''])).directive).toBe(':dirs');
  });
});

describe('completion of resource addresses', () => {
  it('lists the addresses of a document (plugin/collection/name), sorted', async () => {
    expect(await addressesOf(DEMO)).toEqual(['ovs/bridges/mesh', 'ovs/bridges/ovsbr0']);
  });

  it('lists the sections as written when the document is invalid (an unset parameter)', async () => {
    const a = await addressesOf(join(ROOT, 'examples/opdbus-full-mode.yaml'));
    expect(a).toEqual(expect.arrayContaining(['ovs/bridges/mesh', 'ovs/bridges/ovsbr0', 'lxc/containers/100']));
  });

  it('offers the addresses of the document on the command line for a flag that takes addresses (--target)', async () => {
    // a command defined as issue 26's `--target ADDRESS…` will be: derived from its definition
    const cmd = new Command('opd').addCommand(
      new Command('diff')
        .argument('<file>', 'state document')
        .addOption(new Option('--target <addresses...>', 'only these resources and their dependencies')),
    );
    const r = describeCommand(cmd);
    expect(await values(['diff', DEMO, '--target', ''], r)).toEqual(['ovs/bridges/mesh', 'ovs/bridges/ovsbr0']);
    expect(await values(['diff', DEMO, '--target', 'ovs/bridges/o'], r)).toEqual(['ovs/bridges/ovsbr0']);
    expect(await values(['diff', DEMO, '--target', 'ovs/bridges/mesh', ''], r)).toEqual(['ovs/bridges/ovsbr0']);
    // without a document on the command line there is nothing to offer
    expect(await values(['diff', '--target', ''], r)).toEqual([]);
  });

  it('offers addresses for every real flag whose value is an address', async () => {
    const { allCommands } = await import('../../../src/cli/docs/reference.js');
    for (const c of allCommands(root))
      for (const o of c.options.filter((x) => x.long === '--target' || /address/i.test(x.value ?? ''))) {
        const words = [...c.path.slice(1), DEMO, o.long!, ''];
        expect(await values(words), `${c.path.join(' ')} ${o.long}`).toEqual([
          'ovs/bridges/mesh',
          'ovs/bridges/ovsbr0',
        ]);
      }
  });
});
