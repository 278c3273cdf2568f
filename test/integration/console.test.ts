/**
 * The operator's console (issue 26): content diffs, JSON outputs against schema/output/, errors
 * as JSON, --target, stale saved plans, --root rules, and golden outputs of diff and apply (text
 * and JSON) so that an output change is a deliberate one (UPDATE_GOLDEN=1 rewrites them).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, doc, opd, tmp } from '../helpers/opd.js';
import { expectOutput } from '../helpers/output-schema.js';

const DOC = `version: 1
plugins:
  files:
    paths:
      /etc/myapp/myapp.conf:
        content: "listen = 80\\nworkers = 4\\nlog = info\\n"
        depends_on: ["files/paths/etc/myapp"]
      /etc/myapp: { type: directory, mode: "0750" }
      /etc/myapp/db.secret:
        content: "password = s3cret-Value-42\\n"
        secret: true
      /etc/other.conf: { content: "x\\n" }
`;

function fresh(): { root: string; env: Record<string, string>; file: string } {
  const root = tmp('opd-console-');
  mkdirSync(join(root, 'etc/myapp'), { recursive: true });
  writeFileSync(join(root, 'etc/myapp/myapp.conf'), 'listen = 80\nworkers = 2\nlog = info\n');
  return { root, env: { OPD_ROOT: root }, file: doc(DOC) };
}

/** Stable text: the root, run ids, times and durations replaced. */
function norm(s: string, root: string, file: string): string {
  return s
    .split(root)
    .join('<ROOT>')
    .split(file)
    .join('<FILE>')
    .replace(/\d{8}T\d{6}-[0-9a-f]{8}/g, '<RUN>')
    .replace(/"duration_ms": \d+/g, '"duration_ms": 0')
    .replace(/"seq": \d+/g, '"seq": 0')
    .replace(/\d+(\.\d+)? (ms|s)\b/g, '<T>');
}

function golden(name: string, actual: string): void {
  const p = join(ROOT, 'test/fixtures/golden', name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(p)) writeFileSync(p, actual);
  // JSON goldens compare as values (prettier may reflow the file)
  if (name.endsWith('.json')) expect(JSON.parse(actual)).toEqual(JSON.parse(readFileSync(p, 'utf8')));
  else expect(actual).toBe(readFileSync(p, 'utf8'));
}

describe('opd diff and apply: content diffs and the output contract', () => {
  it('shows the content diff of a changed file, and only a note for a secret one', async () => {
    const { root, env, file } = fresh();
    const r = await opd(['diff', file], { env });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toContain('~ files/paths/etc/myapp/myapp.conf: content changed');
    expect(r.stdout).toContain('    -workers = 2\n    +workers = 4\n');
    expect(r.stdout).toContain('(content: secret, not shown)');
    expect(r.stdout).not.toContain('s3cret-Value-42');
    expect(r.stdout).not.toContain('\x1b['); // no colour through a pipe
    golden('diff.txt', norm(r.stdout, root, file));
  });

  it('puts the diff in a diff field of the JSON plan, which matches its schema', async () => {
    const { root, env, file } = fresh();
    const r = await opd(['diff', file, '-o', 'json'], { env });
    expect(r.code, r.stderr).toBe(2);
    const plan = expectOutput<{
      changes: { address: string; diff?: string; diff_note?: string; depends_on: string[] }[];
    }>('diff', r.stdout);
    const conf = plan.changes.find((c) => c.address === 'files/paths//etc/myapp/myapp.conf')!;
    expect(conf.diff).toContain('-workers = 2\n+workers = 4\n');
    expect(plan.changes.find((c) => c.address.endsWith('db.secret'))!.diff_note).toBe('content: secret, not shown');
    expect(r.stdout).not.toContain('s3cret-Value-42');
    golden('diff.json', norm(r.stdout, root, file));
    const bare = await opd(['diff', file, '-o', 'json', '--no-content'], { env });
    expect(bare.stdout).not.toContain('"diff"');
    expect((await opd(['diff', file, '--no-content'], { env })).stdout).not.toContain('+workers');
  });

  it('colours the diff only when asked on a pipe (FORCE_COLOR), and NO_COLOR wins', async () => {
    const { env, file } = fresh();
    const c = await opd(['diff', file], { env: { ...env, FORCE_COLOR: '1' } });
    expect(c.stdout).toContain('    \x1b[32m+workers = 4');
    const n = await opd(['diff', file], { env: { ...env, FORCE_COLOR: '1', NO_COLOR: '1' } });
    expect(n.stdout).not.toContain('\x1b[');
    expect((await opd(['diff', file, '--no-color'], { env: { ...env, FORCE_COLOR: '1' } })).stdout).not.toContain(
      '\x1b[',
    );
  });

  it('applies with a line and diff per change, JSON that matches its schema, and the trail under --root', async () => {
    const { root, env, file } = fresh();
    const j = await opd(['apply', file, '-o', 'json', '--dry-run'], { env });
    expect(j.code, j.stderr).toBe(2);
    expectOutput('apply', j.stdout);
    const a = await opd(['apply', file], { env });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain('ok      ~ files/paths/etc/myapp/myapp.conf: content changed');
    expect(a.stdout).toContain('          +workers = 4');
    golden('apply.txt', norm(a.stdout, root, file));
    // no --audit-log: the trail is the root's, not the host's
    const trail = join(root, 'var/lib/opd/audit.jsonl');
    const start = JSON.parse(readFileSync(trail, 'utf8').split('\n')[0]) as Record<string, unknown>;
    expect(start).toMatchObject({ type: 'run.start', root });
    expect(readFileSync(trail, 'utf8')).not.toContain('s3cret-Value-42');
    const log = await opd(['audit', 'log', '-o', 'json'], { env: { ...env, OPD_AUDIT_LOG: trail } });
    expect(log.code, log.stderr).toBe(0);
    expectOutput('audit-log', log.stdout);
    writeFileSync(join(root, 'etc/myapp/myapp.conf'), 'changed by hand\n');
    const again = await opd(['apply', file, '-o', 'json'], { env });
    expect(again.code, again.stderr).toBe(0);
    const rep = expectOutput<{ plan: { changes: { diff?: string }[] } }>('apply', again.stdout);
    expect(rep.plan.changes[0].diff).toContain('-changed by hand\n+listen = 80\n');
    golden('apply.json', norm(again.stdout, root, file));
  });

  it('plans only the --target resources and what they depend on, the address as printed or exact', async () => {
    const { env, file } = fresh();
    for (const t of ['files/paths/etc/myapp/myapp.conf', 'files/paths//etc/myapp/myapp.conf']) {
      const r = await opd(['diff', file, '-o', 'json', '--target', t], { env });
      expect(r.code, r.stderr).toBe(2);
      const plan = expectOutput<{ changes: { address: string }[] }>('diff', r.stdout);
      expect(plan.changes.map((c) => c.address).sort()).toEqual([
        'files/paths//etc/myapp',
        'files/paths//etc/myapp/myapp.conf',
      ]);
    }
    const a = await opd(['apply', file, '--target', 'files/paths/etc/other.conf'], { env });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain('files/paths/etc/other.conf');
    expect(a.stdout).not.toContain('myapp.conf');
    const bad = await opd(['diff', file, '--target', 'files/paths/etc/othr.conf'], { env });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('did you mean files/paths/etc/other.conf?');
  });

  it('refuses a stale saved plan, naming each resource that changed and how', async () => {
    const { root, env, file } = fresh();
    const out = join(tmp(), 'plan.json');
    expect((await opd(['diff', file, '--out', out], { env })).code).toBe(2);
    const shown = await opd(['show-plan', out, '-o', 'json']);
    expectOutput('diff', shown.stdout);
    writeFileSync(join(root, 'etc/myapp/myapp.conf'), 'edited meanwhile\n');
    const r = await opd(['apply', out], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('files/paths/etc/myapp/myapp.conf (content changed on the host)');
    expect(r.stderr).toContain('nothing was applied');
  });

  it('writes errors as JSON on stdout in JSON mode, locations as key paths', async () => {
    const bad = doc('version: 1\nplugins:\n  files:\n    paths:\n      /etc/x: { mode: "9999" }\n');
    const r = await opd(['diff', bad, '-o', 'json']);
    expect(r.code).toBe(65);
    const e = expectOutput<{ error: { kind: string; problems: { path: string }[]; exit_code: number } }>(
      'error',
      r.stdout,
    );
    expect(e.error).toMatchObject({ kind: 'invalid-document', exit_code: 65 });
    expect(e.error.problems[0].path).toBe('plugins.files.paths["/etc/x"].mode');
    expect(r.stderr).toContain('plugins.files.paths["/etc/x"].mode');
    const u = await opd(['diff', bad, '-o', 'json', '--nope']);
    expect(u.code).toBe(64);
    expectOutput('error', u.stdout);
  });

  it('refuses a --root that does not exist (exit 64) instead of planning a whole host', async () => {
    const { file } = fresh();
    const r = await opd(['diff', file, '--root', '/nonexistent/opd-root']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('--root /nonexistent/opd-root: no such directory');
  });

  it('accepts the sysctl shorthand net.ipv4.ip_forward: 1 the README shows', async () => {
    const r = await opd(['validate', doc('version: 1\nplugins:\n  sysctl:\n    net.ipv4.ip_forward: 1\n')]);
    expect(r.code, r.stderr).toBe(0);
  });
});
