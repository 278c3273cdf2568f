/**
 * Secrets never reach output: every command runs on a document holding a secret field
 * (files `content`, `x-opd-secret`) and a secret parameter substituted into a plain field (a
 * symlink target), and neither value may appear in any stdout, stderr (logs at debug level),
 * saved plan, audit trail or other file beside it. Files under a sandbox root: no backend.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, doc as mkdoc, opd, tmp, uniq, type OpdRun } from '../helpers/opd.js';
import { until } from '../helpers/wait.js';

const u = uniq(6);
const work = tmp('opd-secrets-');
const root = join(work, 'root');
const auditDir = join(work, 'audit');
const audit = join(auditDir, 'audit.jsonl');
const FIELD = `field-secret-${u}-never-shown`;
const PARAM = `param-secret-${u}-never-shown`;
const secretFile = join(work, 'param.secret');
writeFileSync(secretFile, `${PARAM}\n`, { mode: 0o600 });
// no audit key configured (the suite pins one): secrets are hashed with the generated key
const env = { OPD_AUDIT_LOG: audit, OPD_ROOT: root, OPD_LOG_LEVEL: 'debug', OPD_AUDIT_KEY: join(work, 'no-audit-key') };

const text = (content: string, extra = '') => `version: 1
params:
  pw: { type: string, secret: true, from_file: ${secretFile} }
plugins:
  files:
    paths:
      /etc/opd-sec/db.secret: { content: "${content}\\n", mode: "0600" }
      /etc/opd-sec/link: { target: "\${param.pw}" }
${extra}`;
const v1 = mkdoc(text(FIELD), work, 'v1.yaml');
const v2 = mkdoc(text(`${FIELD}-rotated`), work, 'v2.yaml');
// a change that fails (its validator prints the content and exits 1): its error must not carry the secrets either
const bad = mkdoc(
  text(FIELD, `      /etc/opd-sec/bad.conf: { content: "${FIELD} ${PARAM}\\n", validate: "diff /dev/null %s" }\n`),
  work,
  'bad.yaml',
);

/** Every output of every command run here, with the command that made it. */
const outputs: { what: string; text: string }[] = [];
async function run(args: string[]): Promise<OpdRun> {
  const r = await opd(args, { env });
  outputs.push({ what: `opd ${args.join(' ')}`, text: r.stdout + '\n' + r.stderr });
  return r;
}

/** Every file under dir, as text. */
function filesUnder(dir: string): { what: string; text: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile())
    .map((p) => ({ what: p, text: readFileSync(p, 'latin1') }));
}

/** The outputs holding a secret, with the line it is on. */
function leaks(items: { what: string; text: string }[]): string[] {
  return items.flatMap((o) =>
    o.text
      .split('\n')
      .filter((l) => l.includes(FIELD) || l.includes(PARAM))
      .map((l) => `${o.what}: ${l.slice(0, 300)}`),
  );
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('secrets in every output path', () => {
  it('runs every command on a document with secrets and none of them prints one', async () => {
    const plan = join(work, 'plan.json');
    expect((await run(['validate', v1])).code).toBe(0);
    expect((await run(['graph', v1])).code).toBe(0);
    expect((await run(['diff', v1])).code).toBe(2);
    expect((await run(['diff', v1, '-o', 'json'])).code).toBe(2);
    expect((await run(['diff', v1, '--out', plan])).code).toBe(2);
    expect((await run(['show-plan', plan])).code).toBe(2);
    expect((await run(['show-plan', plan, '-o', 'json'])).code).toBe(2);
    expect((await run(['apply', v1, '--dry-run'])).code).toBe(2);
    expect((await run(['apply', plan])).code).toBe(0);
    expect(readFileSync(join(root, 'etc/opd-sec/db.secret'), 'utf8')).toBe(`${FIELD}\n`);
    expect((await run(['apply', v1])).code).toBe(0);
    expect((await run(['apply', v2, '-o', 'json'])).code).toBe(0);
    const failed = await run(['apply', bad, '--rollback']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/FAILED/);
    expect((await run(['apply', bad, '--rollback', '-o', 'json'])).code).toBe(1);
    expect((await run(['diff', v2])).code).toBe(0);
    expect((await run(['show', '--plugin', 'groups'])).code).toBe(0);
    expect((await run(['audit', 'log'])).code).toBe(0);
    expect((await run(['audit', 'log', '-o', 'json'])).code).toBe(0);
    expect((await run(['audit', 'verify'])).code).toBe(0);
    expect((await run(['audit', 'verify', '-o', 'json'])).code).toBe(0);
    // the commands did see the secrets: the audit trail names the changes that carried them
    expect(readFileSync(audit, 'utf8')).toContain('files/paths//etc/opd-sec/db.secret');
    expect(outputs.length).toBe(19);
    expect(leaks(outputs)).toEqual([]);
    expect(leaks(filesUnder(auditDir))).toEqual([]);
    expect(leaks([{ what: plan, text: readFileSync(plan, 'utf8') }])).toEqual([]);
  });

  it("keeps the daemon's logs free of secrets while it converges a rotated secret", async () => {
    const state = mkdoc(readFileSync(v1, 'utf8'), work, 'daemon.yaml');
    writeFileSync(state, readFileSync(v2, 'utf8').replace('-rotated', '-daemon'));
    const before = readFileSync(audit, 'utf8').split('\n').length;
    const d = execa(
      'node',
      [OPD, 'daemon', '--state', state, '--no-dbus', '--no-watch', '--resync', '0', '--log-format', 'json'],
      {
        env: { ...env, NOTIFY_SOCKET: '' },
        reject: false,
      },
    );
    try {
      await until(
        () =>
          readFileSync(audit, 'utf8')
            .split('\n')
            .slice(before - 1)
            .some((l) => l.includes('"type":"run.end"')),
        'the daemon converging',
        120_000,
      );
    } finally {
      d.kill('SIGTERM');
    }
    const r = await d;
    expect(readFileSync(join(root, 'etc/opd-sec/db.secret'), 'utf8')).toBe(`${FIELD}-daemon\n`);
    expect(String(r.stderr)).toMatch(/"msg"/);
    expect(leaks([{ what: 'opd daemon', text: String(r.stdout) + String(r.stderr) }])).toEqual([]);
    expect(leaks(filesUnder(auditDir))).toEqual([]);
  });

  it('hashes secrets with a random key kept private beside the audit trail, the same in every run', () => {
    const key = join(auditDir, 'secret.key');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key).length).toBe(32);
    // the same secret content gives the same keyed hash in every run's change entries
    const hashes = readFileSync(audit, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"type":"change"') && l.includes('/etc/opd-sec/db.secret'))
      .map((l) => JSON.parse(l) as { after: string | null });
    expect(hashes.length).toBeGreaterThan(2);
    expect(new Set(hashes.map((h) => typeof h.after)).has('string')).toBe(true);
  });
});
