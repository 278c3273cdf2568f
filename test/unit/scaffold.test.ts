/**
 * `npm run new-plugin NAME` (scripts/new-plugin.mjs) scaffolds a plugin that works: run in a copy
 * of this repository (its files as they are now, committed to a git repository of its own), it
 * touches only the plugin's folder, its schema (the file and its row in state.schema.json), its
 * unit test and one registry line, and the result type-checks, lints and passes its tests and the
 * registry's. A bad name changes nothing and exits 64 with the fix.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = join(__dirname, '../..');
let copy: string;

/** The environment of a nested tool: without this vitest worker's own variables. */
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'),
);

/** Run a tool in the copy (asynchronously: the worker keeps answering vitest meanwhile). */
function run(cmd: string, args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd: copy, env, encoding: 'utf8', timeout: 240_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      done({ status, out: `${stdout}${stderr}` });
    });
  });
}
const git = (...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=opd', '-c', 'user.email=opd@localhost', ...args], {
    cwd: copy,
    env,
  }).toString();

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), 'opd-scaffold-'));
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: REPO })
    .toString()
    .split('\0')
    .filter((f) => f && f !== 'node_modules' && !f.startsWith('node_modules/'));
  for (const f of files) {
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    try {
      cpSync(join(REPO, f), join(copy, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // deleted in the work tree, not yet committed
    }
  }
  symlinkSync(realpathSync(join(REPO, 'node_modules')), join(copy, 'node_modules'));
  git('init', '-q');
  git('add', '-A', '.');
  git('commit', '-qm', 'the repository as it is');
}, 120_000);

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe('npm run new-plugin', () => {
  it('refuses a bad or taken name with exit 64 and the fix, changing nothing', async () => {
    for (const [name, why] of [
      ['Bad-Name', /is not a plugin name[\s\S]*fix: use 2 to 31 lower-case letters/],
      ['ovs', /plugin ovs exists already[\s\S]*fix: choose another name/],
      ['keyring', /has a row "keyring" already[\s\S]*fix: choose another name/],
    ] as const) {
      const r = await run('node', ['scripts/new-plugin.mjs', name]);
      expect(r.status, r.out).toBe(64);
      expect(r.out).toMatch(why);
      expect(r.out).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(git('status', '--porcelain')).toBe('');
  });

  it('scaffolds a plugin that touches only its folder, schema, test and one registry line, and builds, lints and passes its tests', async () => {
    const r = await run('npm', ['run', '-s', 'new-plugin', 'demo']);
    expect(r.status, r.out).toBe(0);
    expect(git('status', '--porcelain', '--untracked-files=all').trimEnd().split('\n').sort()).toEqual([
      ' M schema/state.schema.json',
      ' M src/plugins/manifests.ts',
      '?? schema/demo.schema.json',
      '?? src/plugins/demo/index.ts',
      '?? src/plugins/demo/manifest.ts',
      '?? test/unit/plugins/demo/demo.test.ts',
    ]);
    // one line added to each file it changes, nothing removed
    expect(git('diff', '--numstat').trim().split('\n').sort()).toEqual([
      '1\t0\tschema/state.schema.json',
      '1\t0\tsrc/plugins/manifests.ts',
    ]);
    expect(git('diff', '-U0', 'src/plugins/manifests.ts')).toContain(
      "+export { default as demo } from './demo/manifest.js';",
    );

    const steps: [string, string[]][] = [
      ['node', ['scripts/gen-schema-types.mjs']],
      ['npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']],
      ['npx', ['eslint', '--max-warnings', '0', 'src/plugins', 'test/unit/plugins/demo']],
      ['npx', ['prettier', '--check', 'src/plugins', 'test/unit/plugins/demo']],
      [
        'npx',
        [
          'vitest',
          'run',
          'test/unit/plugins/demo',
          'test/unit/plugins/manifests.test.ts',
          'test/unit/plugins/registry-schema.test.ts',
          'test/unit/no-plugin-names.test.ts',
          'test/unit/layers.test.ts',
        ],
      ],
    ];
    for (const [cmd, args] of steps) {
      const s = await run(cmd, args);
      expect(s.status, `${cmd} ${args.join(' ')}:\n${s.out}`).toBe(0);
    }
    // the generated type stays out of git (.gitignore): still only what the scaffolder wrote
    expect(git('status', '--porcelain', '--untracked-files=all').trimEnd().split('\n')).toHaveLength(6);
  });
});
