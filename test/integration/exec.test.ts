/**
 * exec: run-once steps on the real host, confined to the test's own directory (the commands
 * only write there); `user:` runs as the existing `nobody` account (no account is created).
 * Applies, re-applies (zero changes), refreshes on a subscribed change, fails clearly, and never
 * lets a secret parameter reach the output or the audit trail.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { doc as mkdoc, opd, tmp } from '../helpers/opd.js';

const work = tmp('opd-exec-');
chmodSync(work, 0o777); // `nobody` writes its marker here
let docs = 0;
const doc = (text: string) => mkdoc(text, work, `state-${++docs}.yaml`);
const audit = join(work, 'audit.jsonl');
const SECRET = 'exec-Secret-7Qm2x9';
const secretFile = join(work, 'token');
writeFileSync(secretFile, SECRET + '\n', { mode: 0o600 });
const env = { OPD_AUDIT_LOG: audit, OPD_LOG_LEVEL: 'warn' };

const state = (conf: string) => `version: 1
params:
  token: { type: string, secret: true, from_file: ${secretFile} }
plugins:
  files:
    paths:
      ${work}/app.conf: { content: "${conf}\\n" }
  exec:
    commands:
      init:
        argv: [sh, -c, 'echo initialising; printf %s "$TOKEN" > ${work}/initialised; echo done >&2']
        creates: ${work}/initialised
        env: { TOKEN: "\${param.token}" }
        cwd: ${work}
        depends_on: [files/paths/${work}/app.conf]
      as-nobody:
        argv: [sh, -c, 'id -un > ${work}/whoami']
        unless: [test, -s, ${work}/whoami]
        user: nobody
      reload:
        argv: [sh, -c, 'echo reload >> ${work}/reloads']
        refresh_on: [files/paths/${work}/app.conf]
`;

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the exec plugin', () => {
  const f = doc(state('v1'));

  it('plans the steps whose guards say they have not run, with the reason (diff exits 2, runs nothing)', async () => {
    const d = await opd(['diff', f], { env });
    expect(d.code, d.stderr).toBe(2);
    expect(d.stdout).toContain(`exec/commands/init: run sh -c`);
    expect(d.stdout).toContain(`(${work}/initialised does not exist)`);
    expect(d.stdout).toMatch(/exec\/commands\/reload: refresh .*\(refresh: files\/paths\/\/.*app\.conf changed\)/);
    expect(existsSync(join(work, 'initialised'))).toBe(false);
  });

  it('runs them once, as the named user, and records their output in the audit trail without the secret', async () => {
    const a = await opd(['apply', f], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(readFileSync(join(work, 'initialised'), 'utf8')).toBe(SECRET);
    expect(readFileSync(join(work, 'whoami'), 'utf8').trim()).toBe('nobody');
    expect(readFileSync(join(work, 'reloads'), 'utf8')).toBe('reload\n');
    const log = readFileSync(audit, 'utf8');
    const init = log
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.address === 'exec/commands/init');
    expect(init?.output).toBe('initialising\ndone\n');
    expect(log).not.toContain(SECRET);
    expect(a.stdout + a.stderr).not.toContain(SECRET);
  });

  it('has nothing to do on the second apply: zero false diffs', async () => {
    const a = await opd(['apply', f], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(a.stdout).toContain('no changes');
    expect(readFileSync(join(work, 'reloads'), 'utf8')).toBe('reload\n');
  });

  it('runs a refresh_on step again when what it subscribes to changes, and only that step', async () => {
    const a = await opd(['apply', doc(state('v2'))], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(a.stdout).not.toContain('exec/commands/init');
    expect(readFileSync(join(work, 'reloads'), 'utf8')).toBe('reload\nreload\n');
  });

  it('refuses a command without a guard at validation (exit 65), naming it', async () => {
    const v = await opd(
      ['validate', doc(`version: 1\nplugins:\n  exec:\n    commands:\n      loose: { argv: [/bin/true] }\n`)],
      { env },
    );
    expect(v.code).toBe(65);
    expect(v.stderr).toMatch(
      /:5:7: plugins\.exec\.commands\.loose: missing one of "creates", "unless", "onlyif", "refresh_on"/,
    );
  });

  it('fails a step that exits non-zero with its exit code and output, and fails verification when its guard still does not hold', async () => {
    const bad = await opd(
      [
        'apply',
        doc(
          `version: 1\nplugins:\n  exec:\n    commands:\n      broken: { argv: [sh, -c, 'echo nope >&2; exit 3'], creates: ${work}/never }\n`,
        ),
      ],
      { env },
    );
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAILED .*exec\/commands\/broken[\s\S]*exited 3: nope/);
    const liar = await opd(
      [
        'apply',
        doc(
          `version: 1\nplugins:\n  exec:\n    commands:\n      liar: { argv: [/bin/true], creates: ${work}/never }\n`,
        ),
      ],
      { env },
    );
    expect(liar.code).toBe(1);
    expect(liar.stdout).toContain('FAILED verification of exec/commands/liar');
  });

  it('kills a step that outlives its timeout and does not retry it', async () => {
    const t = await opd(
      [
        'apply',
        doc(
          `version: 1\nplugins:\n  exec:\n    commands:\n      slow: { argv: [sh, -c, 'echo x >> ${work}/slow-runs; sleep 30'], creates: ${work}/never, timeout: 1 }\n`,
        ),
      ],
      { env },
    );
    expect(t.code).toBe(1);
    expect(t.stdout).toContain('timed out after 1 s (killed)');
    expect(readFileSync(join(work, 'slow-runs'), 'utf8')).toBe('x\n');
  });

  it('answers a command that asks for a password twice from a secret parameter on its stdin, masked everywhere', async () => {
    // what rvd_back --add-user does: prompts on the terminal, reads a line, asks again
    const asks = `printf 'password: '; read -r a; printf 'again: '; read -r b; [ "$a" = "$b" ] || exit 9; printf %s "$a" > ${work}/added; echo "added $a"`;
    const script = join(work, 'asks.sh');
    writeFileSync(script, asks + '\n');
    const text = `version: 1
params:
  pw: { type: string, from_file: ${secretFile} }
plugins:
  exec:
    commands:
      add-user:
        argv: [sh, ${script}]
        stdin: "\${param.pw}\\n\${param.pw}\\n"
        creates: ${work}/added
`;
    const f2 = doc(text);
    const d = await opd(['diff', f2, '-o', 'json'], { env });
    expect(d.code, d.stderr).toBe(2);
    expect(d.stdout).not.toContain(SECRET);
    const a = await opd(['apply', f2], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(readFileSync(join(work, 'added'), 'utf8')).toBe(SECRET);
    expect(a.stdout + a.stderr).not.toContain(SECRET);
    const log = readFileSync(audit, 'utf8');
    expect(log).not.toContain(SECRET);
    const entry = log
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.address === 'exec/commands/add-user' && e.type === 'change');
    expect(entry?.output).toMatch(/^password: again: added <secret[^>]*>\n$/); // the echoed password is masked too
    expect((await opd(['apply', f2], { env })).stdout).toContain('no changes');
  });

  it('gives a command without stdin the end of its input at once instead of a hang', async () => {
    const t = await opd(
      [
        'apply',
        doc(
          `version: 1\nplugins:\n  exec:\n    commands:\n      prompt: { argv: [sh, -c, 'read -r x || echo eof > ${work}/eof'], creates: ${work}/eof, timeout: 20 }\n`,
        ),
      ],
      { env },
    );
    expect(t.code, t.stdout + t.stderr).toBe(0);
    expect(readFileSync(join(work, 'eof'), 'utf8')).toBe('eof\n');
  });

  it('refuses a secret in an argv at validation, naming env: and stdin:', async () => {
    const v = await opd(
      [
        'validate',
        doc(
          `version: 1\nparams:\n  pw: { type: string, from_file: ${secretFile} }\nplugins:\n  exec:\n    commands:\n      leak: { argv: [rvd_back, --add-user, admin, "\${param.pw}"], creates: /nowhere }\n`,
        ),
      ],
      { env },
    );
    expect(v.code).toBe(65);
    expect(v.stderr).toMatch(
      /:7:\d+: plugins\.exec\.commands\.leak\.argv\[3\]: a secret value is in `argv`.*\(fix: use env: or stdin: instead/,
    );
    expect(v.stderr).not.toContain(SECRET);
  });

  it('keeps an intact audit trail', async () => {
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
