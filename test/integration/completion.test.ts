/**
 * `opd completion bash|zsh|fish` in the shells themselves: each script, as printed by the built
 * opd, asks `opd __complete` and hands the shell what it should show. bash and zsh are driven
 * through their completion functions (COMP_LINE / words, as their completion systems call them);
 * fish through `complete -C`, which is what fish runs on Tab.
 */
import { execa } from 'execa';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { OPD, ROOT } from '../helpers/opd.js';

const DEMO = join(ROOT, 'examples/demo.yaml');
const dir = mkdtempSync(join(tmpdir(), 'opd-completion-'));
const env = { PATH: `${dir}:${process.env.PATH}`, HOME: dir, LC_ALL: 'C.UTF-8' };

beforeAll(async () => {
  symlinkSync(OPD, join(dir, 'opd'));
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await execa('opd', ['completion', shell], { env });
    expect(r.exitCode).toBe(0);
    writeFileSync(join(dir, `opd.${shell}`), r.stdout);
  }
});

/** What bash's completion function puts in COMPREPLY for a command line (the cursor at its end). */
async function bash(line: string): Promise<string[]> {
  const script = `source ${dir}/opd.bash
COMP_LINE=${JSON.stringify(line)}; COMP_POINT=\${#COMP_LINE}
read -r -a COMP_WORDS <<< "$COMP_LINE"; COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); [[ $COMP_LINE == *" " ]] && COMP_CWORD=\${#COMP_WORDS[@]}
_opd_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await execa('bash', ['--norc', '--noprofile', '-c', script], { env, cwd: ROOT });
  return r.stdout.split('\n').filter(Boolean);
}

/** What zsh's completion function hands _describe (or _files) for a command line. */
async function zsh(line: string): Promise<string[]> {
  const script = `_describe() { local arr=$4; print -rl -- "\${(@P)arr}"; [[ $5 == -S ]] && print -- '(nospace)' }
_files() { print -- "(files $*)" }
compdef() { : }
source ${dir}/opd.zsh
words=(\${=1}); [[ $1 == *" " ]] && words+=(""); CURRENT=\${#words}
_opd`;
  const r = await execa('zsh', ['-f', '-c', script, 'zsh', line], { env, cwd: ROOT, reject: false });
  return r.stdout.split('\n').filter(Boolean);
}

/** What fish offers on Tab (`complete -C`), values only. */
async function fish(line: string): Promise<string[]> {
  const r = await execa('fish', ['--no-config', '-c', `source ${dir}/opd.fish; complete -C ${JSON.stringify(line)}`], {
    env,
    cwd: ROOT,
  });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t')[0]);
}

describe('bash', () => {
  it('completes commands, subcommands and flags', async () => {
    expect(await bash('opd di')).toEqual(['diff']);
    expect(await bash('opd audit ')).toEqual(['verify', 'log']);
    expect(await bash('opd diff --ou')).toEqual(['--output', '--out']);
  });

  it('completes flag values: choices, plugin names in a comma list, --flag=value', async () => {
    expect(await bash('opd diff -o j')).toEqual(['json']);
    expect(await bash('opd apply s.yaml --only net,fi')).toEqual(['net,files', 'net,firewall']);
    // bash splits --only=fi at '=': it replaces only what follows
    expect(await bash('opd apply --only=fi')).toEqual(['files', 'firewall']);
    expect(await bash('opd show --plugin o')).toEqual(['openflow', 'ovs']);
  });

  it('completes file names where a document goes', async () => {
    expect(await bash('opd validate examples/dem')).toEqual(['examples/demo.yaml']);
  });
});

describe('zsh', () => {
  it('completes commands and flags with their descriptions', async () => {
    const d = await zsh('opd di');
    expect(d).toHaveLength(1);
    expect(d[0]).toMatch(/^diff:show the ordered plan/);
    expect((await zsh('opd diff --ou')).map((l) => l.split(':')[0])).toEqual(['--output', '--out']);
  });

  it('completes plugin names in a comma list without a space after, and leaves files to _files', async () => {
    expect(await zsh('opd apply s.yaml --only net,fi')).toEqual([
      'net,files:plugin',
      'net,firewall:plugin',
      '(nospace)',
    ]);
    expect(await zsh('opd validate exa')).toEqual(['(files )']);
  });

  it('escapes colons in values (addresses, host:port) for _describe', async () => {
    // nothing in opd's own values has a colon yet: the escaping is checked on what zsh receives
    const r = await execa('zsh', ['-f', '-c', `source ${dir}/opd.zsh 2>/dev/null; whence -f _opd`], {
      env,
      reject: false,
    });
    expect(r.stdout).toContain('v//:/\\\\:');
  });
});

describe('fish', () => {
  it('completes commands, flags and plugin names', async () => {
    expect(await fish('opd di')).toEqual(['diff']);
    expect(await fish('opd audit v')).toEqual(['verify']);
    expect(await fish('opd diff --ou')).toEqual(['--out', '--output']);
    expect(await fish('opd apply s.yaml --only net,fi')).toEqual(['net,files', 'net,firewall']);
    expect(await fish('opd completion z')).toEqual(['zsh']);
  });

  it('completes file names where a document goes', async () => {
    expect(await fish(`opd validate ${DEMO.slice(0, -6)}`)).toEqual([DEMO]);
  });
});
