/**
 * Secrets never reach output: every command runs on a document holding a secret field
 * (files `content`, `x-opd-secret`) and a secret parameter substituted into a plain field (a
 * symlink target), and neither value may appear in any stdout, stderr (logs at debug level),
 * saved plan, audit trail or other file beside it. Files under a sandbox root: no backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, ROOT, doc as mkdoc, opd, tmp, uniq, type OpdRun } from '../helpers/opd.js';
import { until } from '../helpers/wait.js';

const u = uniq(6);
const work = tmp('opd-secrets-');
const root = join(work, 'root');
// --root must be an existing directory (a missing one is refused with exit 64)
mkdirSync(root, { recursive: true });
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

/**
 * Acceptance of issue 22 (secrets by construction): a multi-line `from_file` secret (secret
 * without `secret: true`), a secret parameter given with --vars FILE, a command that echoes
 * line 2 (and a cut of line 3) of the secret, and a document that puts a secret into an argv.
 * Every line of the secret, the secret's unkeyed sha256 prefixes and the argv secret appear
 * nowhere: console text and JSON of every command, the saved plan, the trail and every file
 * beside it (confirm markers included), the D-Bus answers of a daemon on a private bus (as root),
 * and the argv of every process opd starts (each command runs under `strace -f -e execve`,
 * which records every argv as /proc/PID/cmdline shows it).
 */
describe('a multi-line secret, its unkeyed hash and an argv secret appear nowhere', () => {
  const w = tmp('opd-secrets-ml-');
  const root2 = join(w, 'root');
  const auditDir2 = join(w, 'audit');
  const traces = join(w, 'traces');
  const ML = [
    `-----BEGIN OPD TEST KEY ${u}-----`,
    `line2-${u}-Zq81kPw3xVb7-secret`,
    `line3-${u}-aa77bb88cc99-secret`,
    `-----END OPD TEST KEY ${u}-----`,
  ].join('\n');
  const PW = `argv-pw-${u}-Kk3mm9Qx`;
  const mlFile = join(w, 'multi.secret');
  const varsFile = join(w, 'vars.yaml');
  const bus = join(w, 'bus');
  const env2 = {
    OPD_AUDIT_LOG: join(auditDir2, 'audit.jsonl'),
    OPD_ROOT: root2,
    OPD_LOG_LEVEL: 'debug',
    OPD_AUDIT_KEY: join(w, 'no-audit-key'),
    DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${bus}`,
  };
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const rotated = `${ML}\nrotated\n`;
  /** What must appear nowhere: every line, the argv secret, unkeyed hash prefixes of every secret content. */
  const needles = [...ML.split('\n'), PW, ...[ML, `${ML}\n`, rotated, PW].map((s) => sha(s).slice(0, 12))];
  const head = `version: 1
params:
  key: { type: string, from_file: ${mlFile} }
  pw: { type: string, secret: true }
plugins:
`;
  const files = (content: string) => `  files:
    paths:
      /etc/opd-ml/key.pem: { content: "${content}", mode: "0600" }
      /etc/opd-ml/direct.pem: { content: { from_file: ${mlFile} }, mode: "0600" }
`;
  const useSecrets = `  exec:
    commands:
      use-secrets:
        argv: [sh, -c, 'test -n "$PW" && printf "%s" "$KEY" > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"']
        env: { KEY: "\${param.key}", PW: "\${param.pw}", OUT: ${root2}/used }
        creates: ${root2}/used
`;
  let good = '';
  let rot = '';
  let bad = '';
  let argvDoc = '';
  const outs: { what: string; text: string }[] = [];
  const seen = (items: { what: string; text: string }[]) =>
    items.flatMap((o) => needles.filter((n) => o.text.includes(n)).map((n) => `${o.what}: holds ${JSON.stringify(n)}`));
  let nTrace = 0;
  /** Run opd under strace (every execve of it and its children, with full argv), keep its output. */
  async function traced(args: string[], opts: { env?: Record<string, string> } = {}): Promise<OpdRun> {
    const log = join(traces, `${String(nTrace++).padStart(2, '0')}.trace`);
    const r = await execa(
      'strace',
      ['-f', '-qq', '--seccomp-bpf', '-e', 'trace=execve', '-s', '1000000', '-o', log, 'node', OPD, ...args],
      { reject: false, env: { ...env2, ...opts.env }, timeout: 300_000 },
    );
    const out = { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    outs.push({ what: `opd ${args.join(' ')}`, text: out.stdout + '\n' + out.stderr });
    return out;
  }
  const traceText = () => filesUnder(traces).map((f) => ({ what: f.what, text: f.text }));

  beforeAll(() => {
    mkdirSync(traces, { recursive: true });
    mkdirSync(root2, { recursive: true });
    writeFileSync(mlFile, `${ML}\n`, { mode: 0o600 });
    writeFileSync(varsFile, `pw: ${PW}\n`, { mode: 0o600 });
    good = mkdoc(head + files('${param.key}\\n') + useSecrets, w, 'good.yaml');
    rot = mkdoc(head + files('${param.key}\\nrotated\\n') + useSecrets, w, 'rotated.yaml');
    bad = mkdoc(
      head +
        files('${param.key}\\n') +
        `  exec:
    commands:
      echo-lines:
        argv: [sh, -c, 'printf "%s\\n" "$KEY" | sed -n 2p >&2; printf "%s\\n" "$KEY" | sed -n 3p | cut -c4-30; exit 3']
        env: { KEY: "\${param.key}" }
        creates: ${root2}/never
`,
      w,
      'bad.yaml',
    );
    argvDoc = mkdoc(
      head +
        `  exec:
    commands:
      leak:
        argv: [sh, -c, 'true', "--password=\${param.pw}"]
        creates: ${root2}/never
`,
      w,
      'argv.yaml',
    );
  });

  it('refuses the secret in an argv at validate (exit 65, file:line:col, fix: env), and diff and apply run nothing', async () => {
    for (const cmd of ['validate', 'diff', 'apply']) {
      const r = await traced([cmd, argvDoc, '--vars', varsFile]);
      expect(r.code).toBe(65);
      expect(r.stderr).toContain(`${argvDoc}:9:32: plugins.exec.commands.leak.argv[3]`);
      expect(r.stderr).toContain('/proc/PID/cmdline');
      expect(r.stderr).toContain('env:');
    }
    // nothing but opd itself was started
    for (const t of traceText()) expect(t.text).not.toMatch(/execve\("\/(usr\/)?bin\/sh"/);
  });

  it('warns when the secret is given with --var instead of --vars FILE or OPD_VAR_', async () => {
    const r = await opd(['validate', good, '--var', 'pw=decoy-value-on-the-command-line'], { env: env2 });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('secret parameter "pw" was given with --var');
    expect(r.stderr).toContain('--vars FILE');
    expect(r.stderr).toContain('OPD_VAR_pw');
  });

  it('runs every command on the secrets and none of them shows a line, a cut of a line or an unkeyed hash', async () => {
    const plan = join(w, 'plan.json');
    const V = ['--vars', varsFile];
    expect((await traced(['validate', good, ...V])).code).toBe(0);
    expect((await traced(['diff', good, ...V])).code).toBe(2);
    expect((await traced(['diff', good, ...V, '-o', 'json'])).code).toBe(2);
    expect((await traced(['diff', good, ...V, '--out', plan])).code).toBe(2);
    expect((await traced(['show-plan', plan])).code).toBe(2);
    expect((await traced(['show-plan', plan, '-o', 'json'])).code).toBe(2);
    expect((await traced(['apply', plan, ...V])).code).toBe(0);
    // the secrets were used: the files hold them, the command got them in its environment
    expect(readFileSync(join(root2, 'etc/opd-ml/key.pem'), 'utf8')).toBe(`${ML}\n`);
    expect(readFileSync(join(root2, 'etc/opd-ml/direct.pem'), 'utf8')).toBe(ML);
    expect(readFileSync(join(root2, 'used'), 'utf8')).toBe(ML);
    expect((await traced(['apply', good, ...V])).code).toBe(0);
    expect((await traced(['apply', rot, ...V, '-o', 'json'])).code).toBe(0);
    expect((await traced(['diff', good, ...V])).code).toBe(2);
    // a command that echoes line 2 and a cut of line 3, and fails: console (text, JSON) and trail
    const f = await traced(['apply', bad, ...V]);
    expect(f.code).toBe(1);
    expect(f.stdout + f.stderr).toMatch(/exited 3: <secret>/);
    expect((await traced(['apply', bad, ...V, '-o', 'json'])).code).toBe(1);
    expect((await traced(['show', '--plugin', 'groups'])).code).toBe(0);
    expect((await traced(['audit', 'log'])).code).toBe(0);
    expect((await traced(['audit', 'log', '-o', 'json'])).code).toBe(0);
    expect((await traced(['audit', 'verify'])).code).toBe(0);
    const trail = readFileSync(env2.OPD_AUDIT_LOG, 'utf8');
    // the command's output is in the trail, masked; summaries carry keyed fingerprints
    expect(trail).toMatch(/"output":"<secret[^"]*>\\n<secret/);
    expect(trail).toMatch(
      /"summary":"secret content changed \(<secret hmac-sha256:[0-9a-f]{16}> → <secret hmac-sha256:[0-9a-f]{16}>/,
    );
    // the saved plan: keyed fingerprints, no unkeyed one
    expect(readFileSync(plan, 'utf8')).toMatch(/secret content <secret hmac-sha256:[0-9a-f]{16}>/);
    expect(seen(outs)).toEqual([]);
    expect(seen([{ what: plan, text: readFileSync(plan, 'utf8') }])).toEqual([]);
    expect(seen(filesUnder(auditDir2))).toEqual([]);
    // strace saw the commands opd started (the secrets went to them in their environment only)
    expect(traceText().some((t) => t.text.includes('test -n \\"$PW\\"'))).toBe(true);
    expect(seen(traceText())).toEqual([]);
  });

  it('keeps only a small marker of a confirmed run and of a reverted one: no pre-state, no secrets', async () => {
    const V = ['--vars', varsFile];
    const confirmDir = join(auditDir2, 'confirm');
    const waitFor = async (args: string[]) => {
      const log = join(traces, `${String(nTrace++).padStart(2, '0')}.trace`);
      const child = execa(
        'strace',
        ['-f', '-qq', '--seccomp-bpf', '-e', 'trace=execve', '-s', '1000000', '-o', log, 'node', OPD, ...args],
        { reject: false, env: env2 },
      );
      await until(
        () => existsSync(confirmDir) && readdirSync(confirmDir).some((n) => n.endsWith('.pending.json')),
        'a run waiting for confirmation',
        60_000,
      );
      // while it waits the pending file holds the pre-state (0600)
      const pending = readdirSync(confirmDir).find((n) => n.endsWith('.pending.json'))!;
      expect(statSync(join(confirmDir, pending)).mode & 0o777).toBe(0o600);
      return { child, run: pending.replace('.pending.json', '') };
    };
    expect((await traced(['apply', good, ...V])).code).toBe(0);
    // 1. confirmed
    const a = await waitFor(['apply', rot, ...V, '--confirm', '120']);
    expect((await traced(['confirm'])).code).toBe(0);
    const ra = await a.child;
    outs.push({ what: 'opd apply --confirm (confirmed)', text: String(ra.stdout) + String(ra.stderr) });
    expect(ra.exitCode).toBe(0);
    const marker = JSON.parse(readFileSync(join(confirmDir, `${a.run}.confirmed.json`), 'utf8')) as object;
    expect(Object.keys(marker).sort()).toEqual(['at', 'by', 'deadline', 'file', 'run', 'state']);
    expect(readFileSync(join(root2, 'etc/opd-ml/key.pem'), 'utf8')).toBe(rotated);
    // 2. reverted (opd confirm --revert)
    const b = await waitFor(['apply', good, ...V, '--confirm', '120']);
    expect((await traced(['confirm', '--revert'])).code).toBe(0);
    const rb = await b.child;
    outs.push({ what: 'opd apply --confirm (reverted)', text: String(rb.stdout) + String(rb.stderr) });
    expect(String(rb.stdout)).toContain('REVERTED');
    expect(readFileSync(join(root2, 'etc/opd-ml/key.pem'), 'utf8')).toBe(rotated);
    expect(existsSync(join(confirmDir, `${b.run}.reverting.json`))).toBe(false);
    const rev = JSON.parse(readFileSync(join(confirmDir, `${b.run}.reverted.json`), 'utf8')) as object;
    expect(Object.keys(rev).sort()).toEqual(['detail', 'ok']);
    expect(readdirSync(confirmDir).filter((n) => n.endsWith('.pending.json'))).toEqual([]);
    for (const f of filesUnder(confirmDir)) expect(f.text).not.toContain('"pre"');
    expect(seen(outs)).toEqual([]);
    expect(seen(filesUnder(auditDir2))).toEqual([]);
    expect(seen(traceText())).toEqual([]);
  });

  it('answers D-Bus QueryState, Diff and Status (root, private bus with the shipped policy) without a secret', async () => {
    const conf = join(w, 'bus.conf');
    writeFileSync(
      conf,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=${bus}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
  </policy>
  <include>${join(ROOT, 'packaging/dbus/org.opd.Reconciler1.conf')}</include>
</busconfig>
`,
    );
    const dbus = execa('dbus-daemon', ['--nofork', `--config-file=${conf}`], { reject: false });
    const log = join(traces, `${String(nTrace++).padStart(2, '0')}.trace`);
    let daemon: ReturnType<typeof execa> | undefined;
    const call = async (dest: string, path: string, iface: string, member: string): Promise<string> => {
      // h22a rate-limits reading methods: a refused call is tried again a little later
      let last = '';
      for (let i = 0; i < 20; i++) {
        const r = await execa(
          'busctl',
          [`--address=unix:path=${bus}`, '--json=short', 'call', dest, path, iface, member],
          { reject: false, timeout: 120_000 },
        );
        if (r.exitCode === 0) return (JSON.parse(String(r.stdout)) as { data: string[] }).data[0];
        last = String(r.stderr);
        await new Promise((res) => setTimeout(res, 1000));
      }
      throw new Error(`busctl ${member}: ${last}`);
    };
    try {
      await until(() => existsSync(bus), 'the private bus', 30_000);
      daemon = execa(
        'strace',
        [
          '-f',
          '-qq',
          '--seccomp-bpf',
          '-e',
          'trace=execve',
          '-s',
          '1000000',
          '-o',
          log,
          'node',
          OPD,
          'daemon',
          '--state',
          good,
          '--vars',
          varsFile,
          '--no-watch',
          '--resync',
          '0',
          '--log-format',
          'json',
        ],
        { reject: false, env: { ...env2, NOTIFY_SOCKET: '' } },
      );
      await until(
        async () =>
          (
            await execa(
              'busctl',
              [
                `--address=unix:path=${bus}`,
                'call',
                'org.opd.Reconciler1',
                '/org/opd/Reconciler1',
                'org.opd.Reconciler1',
                'Status',
              ],
              { reject: false },
            )
          ).exitCode === 0,
        'the daemon on the private bus',
        120_000,
      );
      await until(
        async () =>
          /"converged"/.test(
            await call('org.opd.Reconciler1', '/org/opd/Reconciler1', 'org.opd.Reconciler1', 'Status'),
          ),
        'the daemon converging',
        120_000,
      );
      // the host drifts: Diff has something secret to describe
      writeFileSync(join(root2, 'etc/opd-ml/key.pem'), 'drifted\n');
      const answers = {
        QueryState: await call('org.opdbus', '/org/opdbus/state', 'org.opdbus.StateManager', 'QueryState'),
        Diff: await call('org.opd.Reconciler1', '/org/opd/Reconciler1', 'org.opd.Reconciler1', 'Diff'),
        Status: await call('org.opd.Reconciler1', '/org/opd/Reconciler1', 'org.opd.Reconciler1', 'Status'),
      };
      expect(answers.QueryState).toContain('/etc/opd-ml/key.pem');
      expect(answers.Diff).toMatch(/files\/paths\/\/etc\/opd-ml\/key\.pem.*secret content changed/);
      const st = await traced(['status']);
      const sj = await traced(['status', '-o', 'json']);
      expect(sj.stdout).toContain('/etc/opd-ml/key.pem');
      expect(st.code === 0 || st.code === 1).toBe(true);
      expect(seen(Object.entries(answers).map(([what, text]) => ({ what: `D-Bus ${what}`, text })))).toEqual([]);
    } finally {
      // the daemon itself, by the PID strace logged for it (strace passes no signal on, and
      // a tracee it detached from would keep the output pipes open)
      const pid = Number(/^(\d+) /.exec(existsSync(log) ? readFileSync(log, 'utf8') : '')?.[1]);
      if (pid > 0) process.kill(pid, 'SIGTERM');
      else daemon?.kill('SIGKILL');
      const d = daemon ? await daemon : undefined;
      if (d) outs.push({ what: 'opd daemon', text: String(d.stdout) + String(d.stderr) });
      dbus.kill('SIGTERM');
      await dbus;
    }
    expect(seen(outs)).toEqual([]);
    expect(seen(filesUnder(auditDir2))).toEqual([]);
    expect(seen(traceText())).toEqual([]);
  });

  afterAll(() => rmSync(w, { recursive: true, force: true }));
});
