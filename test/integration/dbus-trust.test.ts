/**
 * The daemon's D-Bus API tried by an unprivileged local user: a private dbus-daemon started here
 * with the shipped bus policy (packaging/dbus/org.opd.Reconciler1.conf), `opd daemon` as root on
 * it, a document with a `from_file` secret substituted into a file's content, an exec command's
 * environment and a validator's failing output; callers run as the real uid `nobody` (setpriv).
 * polkit: a polkitd of this file's own on the private bus, with the shipped action
 * (packaging/polkit/org.opd.reconciler1.policy) and a rule granting it to one user.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { OPD, ROOT, tmp, uniq } from '../helpers/opd.js';
import { until } from '../helpers/wait.js';

const id = uniq(6);
const SECRET = `pw-${id}-never-over-dbus`;
const NOBODY = 65534;
const POLKIT_USER = `opdpk${id}`;
const ACTIONS = '/usr/share/polkit-1/actions/org.opd.reconciler1.policy';
const RULE = `/etc/polkit-1/rules.d/49-opd-test-${id}.rules`;

interface Reply {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the D-Bus API against an unprivileged caller on a bus with the shipped policy', () => {
  let dir: string;
  let bus: string;
  let busd: ResultPromise | undefined;
  let polkitd: ResultPromise | undefined;
  let daemon: ResultPromise | undefined;
  let daemonOut = '';
  let count: string;
  let polkitUid = -1;
  let addedUser = false;
  const address = () => `unix:path=${bus}`;

  /** busctl on the private bus, as root or as another uid (a real setuid: setpriv). */
  async function call(
    as: number | 'root',
    dest: string,
    path: string,
    iface: string,
    member: string,
    args: string[] = [],
  ): Promise<Reply> {
    const argv = ['busctl', `--address=${address()}`, '--json=short', 'call', dest, path, iface, member, ...args];
    const full = as === 'root' ? argv : ['setpriv', `--reuid=${as}`, `--regid=${as}`, '--clear-groups', '--', ...argv];
    const r = await execa(full[0], full.slice(1), { reject: false, timeout: 120_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }
  const opdCall = (as: number | 'root', member: string) =>
    call(as, 'org.opd.Reconciler1', '/org/opd/Reconciler1', 'org.opd.Reconciler1', member);
  const opdbusCall = (as: number | 'root', member: string, args: string[] = []) =>
    call(as, 'org.opdbus', '/org/opdbus/state', 'org.opdbus.StateManager', member, args);
  const body = (r: Reply) => (JSON.parse(r.stdout) as { data: string[] }).data[0];
  const guardRuns = () => (existsSync(count) ? readFileSync(count, 'utf8').split('\n').filter(Boolean).length : 0);

  beforeAll(async () => {
    dir = tmp('opd-dbus-trust-');
    chmodSync(dir, 0o755);
    // the daemon's --root must exist (a missing one is refused with exit 64)
    mkdirSync(join(dir, 'root'));
    bus = join(dir, 'bus');
    count = join(dir, 'guard.count');
    const secretFile = join(dir, 'pw.secret');
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    const conf = join(dir, 'bus.conf');
    writeFileSync(
      conf,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>${address()}</listen>
  <auth>EXTERNAL</auth>
  <!-- the default policy of Debian's system.conf -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>${join(ROOT, 'packaging/dbus/org.opd.Reconciler1.conf')}</include>
  <include>/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>
</busconfig>
`,
    );
    busd = execa('dbus-daemon', [`--config-file=${conf}`, '--nofork', '--nopidfile', '--nosyslog'], {
      reject: false,
      buffer: false,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await until(() => existsSync(bus), 'the private bus socket');
    chmodSync(bus, 0o777);

    // polkit on the private bus: the shipped action, and a rule granting it to one user
    const u = await execa('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', POLKIT_USER], {
      reject: false,
    });
    addedUser = u.exitCode === 0;
    polkitUid = Number((await execa('id', ['-u', POLKIT_USER])).stdout);
    copyFileSync(join(ROOT, 'packaging/polkit/org.opd.reconciler1.policy'), ACTIONS);
    writeFileSync(
      RULE,
      `polkit.addRule(function (action, subject) {\n  if (action.id == "org.opd.reconciler1.read" && subject.user == "${POLKIT_USER}") return polkit.Result.YES;\n});\n`,
    );
    polkitd = execa('/usr/lib/polkit-1/polkitd', ['--no-debug'], {
      reject: false,
      buffer: false,
      env: { DBUS_SYSTEM_BUS_ADDRESS: address() },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    await until(
      async () =>
        (
          await call(
            'root',
            'org.freedesktop.PolicyKit1',
            '/org/freedesktop/PolicyKit1/Authority',
            'org.freedesktop.DBus.Peer',
            'Ping',
          )
        ).code === 0,
      'polkitd on the private bus',
      60_000,
      200,
    );

    const state = join(dir, 'state.yaml');
    writeFileSync(
      state,
      `version: 1
params:
  pw: { type: string, secret: true, from_file: ${secretFile} }
plugins:
  files:
    paths:
      /etc/opd-dbus/db.conf: { content: "password=\${param.pw}\\n", mode: "0600" }
      /etc/opd-dbus/bad.conf: { content: "\${param.pw}\\n", validate: "diff /dev/null %s" }
  exec:
    commands:
      with-secret-env:
        argv: ["true"]
        env: { PW: "\${param.pw}" }
        unless: [sh, -c, "echo read >> ${count}"]
`,
    );
    daemon = execa(
      process.execPath,
      [
        OPD,
        'daemon',
        '--state',
        state,
        '--root',
        join(dir, 'root'),
        '--audit-log',
        join(dir, 'audit.jsonl'),
        '--no-watch',
        '--poll',
        '0',
        '--resync',
        '0',
        '--backoff',
        '3600',
      ],
      {
        reject: false,
        all: true,
        buffer: false,
        env: { DBUS_SYSTEM_BUS_ADDRESS: address(), NOTIFY_SOCKET: '', OPD_LOG_LEVEL: 'info' },
      },
    );
    daemon.all?.on('data', (b: Buffer) => (daemonOut += b.toString()));
    await until(
      async () =>
        (await opdCall('root', 'Status')).code === 0 && /"runs":[1-9]/.test(body(await opdCall('root', 'Status'))),
      'the daemon on the private bus after its first run',
      120_000,
      200,
    );
  });

  afterAll(async () => {
    for (const p of [daemon, polkitd, busd]) {
      if (p?.pid && p.exitCode === null) process.kill(p.pid, 'SIGTERM');
      await p;
    }
    rmSync(RULE, { force: true });
    rmSync(ACTIONS, { force: true });
    if (addedUser) await execa('userdel', [POLKIT_USER], { reject: false });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives nobody no secret value from any method, and the state only to root', async () => {
    // the daemon did see the secret: it is in the file it wrote
    expect(readFileSync(join(dir, 'root/etc/opd-dbus/db.conf'), 'utf8')).toBe(`password=${SECRET}\n`);
    const replies: Record<string, Reply> = {
      Diff: await opdCall(NOBODY, 'Diff'),
      QueryState: await opdbusCall(NOBODY, 'QueryState'),
      Status: await opdCall(NOBODY, 'Status'),
      Apply: await opdCall(NOBODY, 'Apply'),
      ApplyState: await opdbusCall(NOBODY, 'ApplyState', ['s', '{"version":1,"plugins":{}}']),
      Introspect: await call(
        NOBODY,
        'org.opd.Reconciler1',
        '/org/opd/Reconciler1',
        'org.freedesktop.DBus.Introspectable',
        'Introspect',
      ),
    };
    for (const [m, r] of Object.entries(replies)) {
      expect(r.stdout + r.stderr, m).not.toContain(SECRET);
      expect(r.stdout + r.stderr, m).not.toContain(SECRET.slice(0, 12));
    }
    // reading the host's state: refused by the daemon (the bus lets polkit decide; polkit says no)
    for (const m of ['Diff', 'QueryState']) {
      expect(replies[m].code, m).not.toBe(0);
      expect(replies[m].stderr, m).toMatch(/Access denied|for root or callers polkit authorizes/);
    }
    // changing the host: refused by the bus policy itself
    for (const m of ['Apply', 'ApplyState']) {
      expect(replies[m].code, m).not.toBe(0);
      expect(replies[m].stderr, m).toMatch(/Access denied/i);
    }
    // the status: the daemon's health (the failing validator echoes the secret: never shown)
    expect(replies.Status.code).toBe(0);
    const st = JSON.parse(body(replies.Status)) as { failing: { address: string; error: string }[] };
    const bad = st.failing.find((f) => f.address.endsWith('/etc/opd-dbus/bad.conf'));
    expect(bad?.error).toContain('validation of /etc/opd-dbus/bad.conf failed');
    expect(replies.Introspect.code).toBe(0);

    // root reads the state: redacted like `opd show` / `opd diff`
    const q = await opdbusCall('root', 'QueryState');
    expect(q.code, q.stderr).toBe(0);
    expect(q.stdout).not.toContain(SECRET);
    const state = JSON.parse(body(q)) as { plugins: { files: unknown; exec: unknown } };
    expect(JSON.stringify(state.plugins.files)).toContain('<secret>');
    expect(JSON.stringify(state.plugins.exec)).toContain('with-secret-env');
    const d = await opdCall('root', 'Diff');
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).not.toContain(SECRET);
    const a = await opdCall('root', 'Apply');
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).not.toContain(SECRET);
    expect(daemonOut).not.toContain(SECRET);
  });

  it('keeps the signals free of secrets for a listener that is not root', async () => {
    // gdbus monitor subscribes with an ordinary match rule (no eavesdropping), as nobody
    const mon = execa(
      'setpriv',
      [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        '--',
        'gdbus',
        'monitor',
        '--address',
        address(),
        '--dest',
        'org.opd.Reconciler1',
      ],
      { reject: false, buffer: false, env: { HOME: '/nonexistent' } },
    );
    let out = '';
    mon.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await until(() => out.includes('Monitoring'), 'gdbus monitor subscribed', 30_000);
      // a failing change in a run the caller may not start: root asks for it
      rmSync(join(dir, 'root/etc/opd-dbus/db.conf'));
      expect((await opdCall('root', 'Apply')).code).toBe(0);
      await until(() => out.includes('RunFinished'), 'the RunFinished signal', 60_000);
    } finally {
      mon.kill('SIGTERM');
      await mon;
    }
    expect(out).toContain('bad.conf');
    expect(out).not.toContain(SECRET);
  });

  it('lets a caller polkit authorizes read the redacted state, and still refuses it Apply', async () => {
    const q = await opdbusCall(polkitUid, 'QueryState');
    expect(q.code, q.stderr).toBe(0);
    expect(q.stdout).not.toContain(SECRET);
    expect(JSON.stringify(JSON.parse(body(q)))).toContain('<secret>');
    const d = await opdCall(polkitUid, 'Diff');
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).not.toContain(SECRET);
    const a = await opdCall(polkitUid, 'Apply');
    expect(a.code).not.toBe(0);
    expect(a.stderr).toMatch(/Access denied/i);
  });

  it('runs the reads of the host one at a time, at most one per interval, however many calls come', async () => {
    const before = guardRuns();
    // eight callers at once share one read of the host
    const all = await Promise.all(Array.from({ length: 8 }, () => opdCall('root', 'Diff')));
    for (const r of all) expect(r.code, r.stderr).toBe(0);
    expect(new Set(all.map((r) => body(r))).size).toBe(1);
    expect(guardRuns() - before).toBeLessThanOrEqual(2);
    // calls one after another: each read of the host starts at least the interval after the last
    const t0 = Date.now();
    const mid = guardRuns();
    for (let i = 0; i < 3; i++) expect((await opdbusCall('root', 'QueryState')).code).toBe(0);
    expect(guardRuns() - mid).toBe(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2 * 2_000);
  });
});
