/**
 * Secrets by construction: every line of a secret and every 8 characters in a row of a line are
 * masked; fingerprints of secret content are stand-ins that outputs mask (keyed in the trail);
 * from_file is secret unless `secret: false`; a secret in an argv is refused at validate; a
 * secret given with --var is warned about.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseText } from '../../../src/core/document.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { registry } from '../../../src/plugins/index.js';
import { OpdError } from '../../../src/core/errors.js';
import type { VarSources } from '../../../src/core/params.js';
import {
  clearSecretValues,
  contentFingerprint,
  holdsSecret,
  registerSecretValues,
  scrub,
} from '../../../src/core/secrets.js';
import { newRedactor } from '../../../src/core/validate.js';
import { sha256 } from '../../../src/core/canonical.js';

const dir = mkdtempSync(join(tmpdir(), 'opd-secret-parts-'));
const prep = (text: string, vars: VarSources = {}) =>
  prepareLoaded(registry, parseText(Buffer.from(text), 'p.yaml'), {}, { env: {}, ...vars });
async function fails(text: string, vars: VarSources = {}): Promise<OpdError> {
  try {
    await prep(text, vars);
  } catch (err) {
    return err as OpdError;
  }
  throw new Error('document was accepted');
}

const KEY = '-----BEGIN KEY-----\nline-two-Zq81kPw3xVb7\n  indented-line-three-77aa\nend!\n-----END KEY-----';

describe('masking parts of secrets', () => {
  afterEach(() => clearSecretValues());

  it('masks a line of a multi-line secret that a validator echoes alone', () => {
    registerSecretValues([KEY]);
    expect(scrub('error at line 2: line-two-Zq81kPw3xVb7 is not valid')).toBe('error at line 2: <secret> is not valid');
    expect(scrub('got "indented-line-three-77aa"')).toBe('got "<secret>"');
    expect(scrub(KEY)).not.toMatch(/Zq81|77aa/);
  });

  it('masks any 8 characters in a row of a line: a message that cuts the line short shows none of it', () => {
    registerSecretValues([KEY]);
    const cut = 'invalid value "ne-two-Zq81k…": must match ^x$';
    const out = scrub(cut);
    expect(out).not.toContain('Zq81');
    expect(out).toContain('invalid value');
    expect(holdsSecret('xx two-Zq81kP yy')).toBe(true);
    expect(holdsSecret('two-Zq8')).toBe(false);
  });

  it('does not cut JSON apart: windows with quotes or without a letter or digit do not count', () => {
    registerSecretValues(['a        "b": 12, c\nshort']);
    const json = JSON.stringify({ a: { b: [1, 2] } }, null, 8);
    expect(scrub(json)).toBe(json);
  });

  it('masks with the keyed hash of the masked text in the audit trail', () => {
    registerSecretValues([KEY]);
    const r = newRedactor().withKey('k');
    expect(r.text('x line-two-Zq81kPw3xVb7 y')).toMatch(/^x <secret hmac-sha256:[0-9a-f]{16}> y$/);
  });

  it('gives secret content a stand-in that outputs mask: <secret> on display, a keyed hash in the trail, never its sha256', () => {
    registerSecretValues(['Pa55word-rotated-2026']);
    const content = 'user=app\npassword=Pa55word-rotated-2026\n';
    const fp = contentFingerprint(content);
    expect(fp).toMatch(/^<secret #\d+>$/);
    expect(contentFingerprint(content)).toBe(fp);
    const summary = `content changed (${fp}, 41 B)`;
    expect(scrub(summary)).toBe('content changed (<secret>, 41 B)');
    const keyed = newRedactor().withKey('k').text(summary);
    expect(keyed).toMatch(/^content changed \(<secret hmac-sha256:[0-9a-f]{16}>, 41 B\)$/);
    expect(keyed).toBe(
      newRedactor()
        .withKey('k')
        .text(`content changed (${contentFingerprint(content)}, 41 B)`),
    );
    expect(newRedactor().withKey('other').text(summary)).not.toBe(keyed);
    expect(keyed).not.toContain(sha256(content).slice(0, 12));
    // content without a secret keeps its plain fingerprint
    expect(contentFingerprint('hello\n')).toBe(`sha256:${sha256('hello\n').slice(0, 12)}`);
    expect(contentFingerprint('hello\n', true)).toMatch(/^<secret #\d+>$/);
  });
});

describe('secret parameters by construction', () => {
  afterEach(() => clearSecretValues());

  it('makes a from_file parameter secret without `secret: true`, and not secret with `secret: false`', async () => {
    const f = join(dir, 'pw');
    writeFileSync(f, 'from-file-secret-value-1\n', { mode: 0o600 });
    const g = join(dir, 'name');
    writeFileSync(g, 'plain-name-from-a-file\n');
    await prep(
      `version: 1\nparams:\n  pw: { type: string, from_file: ${f} }\n  nm: { type: string, secret: false, from_file: ${g} }\nplugins:\n  users:\n    users:\n      u: { comment: "\${param.pw} \${param.nm}" }\n`,
    );
    expect(scrub('x from-file-secret-value-1 y')).toBe('x <secret> y');
    expect(scrub('x plain-name-from-a-file y')).toBe('x plain-name-from-a-file y');
  });

  it('treats { from_file } values as secret unless they say secret: false', async () => {
    const f = join(dir, 'v1');
    writeFileSync(f, 'value-file-secret-2\n');
    const g = join(dir, 'v2');
    writeFileSync(g, 'plain-public-text-3\n');
    const p = await prep(
      `version: 1\nplugins:\n  users:\n    users:\n      u: { comment: { from_file: ${f} } }\n      v: { comment: { from_file: ${g}, secret: false } }\n`,
    );
    const users = (p.doc.plugins.users as { users: Record<string, { comment: string }> }).users;
    expect(users.v.comment).toBe('plain-public-text-3');
    expect(scrub(users.u.comment)).toBe('<secret>');
    expect(scrub(users.v.comment)).toBe('plain-public-text-3');
  });

  it('refuses a secret parameter in an exec argv at validate, at its line, with the fix: env', async () => {
    const f = join(dir, 'dbpw');
    writeFileSync(f, 'argv-secret-Qw3rty99\n', { mode: 0o600 });
    const text = `version: 1
params:
  pw: { type: string, from_file: ${f} }
plugins:
  exec:
    commands:
      add-user:
        argv: [rvd_back, --add-user, admin, "--password=\${param.pw}"]
        creates: /var/lib/x
      by-shell:
        shell: "echo \${param.pw} | chpasswd"
        creates: /var/lib/y
      by-env:
        argv: [sh, -c, 'echo "$PW" | chpasswd']
        env: { PW: "\${param.pw}" }
        creates: /var/lib/z
`;
    const e = await fails(text);
    expect(e.exitCode).toBe(65);
    expect(e.problems!.map((p) => [p.pointer, p.line, p.col])).toEqual([
      ['/plugins/exec/commands/add-user/argv/3', 8, 45],
      ['/plugins/exec/commands/by-shell/shell', 11, 16],
    ]);
    expect(e.problems![0].message).toContain('/proc/PID/cmdline');
    expect(e.problems![0].fix).toContain('env:');
    expect(e.format()).toContain('p.yaml:8:45');
    expect(e.format()).not.toContain('Qw3rty99');
    // the same secret in env: is accepted
    await prep(text.replace(/ {6}add-user:[\s\S]*?(?= {6}by-env:)/, ''));
  });

  it('warns when a secret parameter is given with --var (visible in /proc/PID/cmdline), not with --vars or OPD_VAR_', async () => {
    const text = 'version: 1\nparams:\n  pw: { type: string, secret: true }\nplugins: {}\n';
    const p = await prep(text, { vars: ['pw=given-on-the-command-line'] });
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatchObject({ file: 'p.yaml', line: 3, pointer: '/params/pw' });
    expect(p.warnings[0].message).toContain('/proc/PID/cmdline');
    expect(p.warnings[0].fix).toContain('--vars FILE');
    expect(p.warnings[0].fix).toContain('OPD_VAR_pw');
    expect((await prep(text, { env: { OPD_VAR_pw: 'from-the-environment' } })).warnings).toEqual([]);
  });
});
