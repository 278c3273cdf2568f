import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { doc, opd, tmp } from '../helpers/opd.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { kvmUsable, virtFlags } from '../helpers/host.js';

let ns: Netns;
let env: Record<string, string>;
let dir: string;
let server: Server;
let busyPort: number;

const osId = /^ID=(.*)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1].replace(/"/g, '') ?? 'debian';

describe('checks plugin (read-only preconditions)', () => {
  beforeAll(async () => {
    ns = await createNetns('opdchk');
    dir = tmp('opd-checks-');
    env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_NETNS: ns.name };
    server = createServer();
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    busyPort = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server?.close();
    await ns?.remove();
  });

  it('passes the size, kernel and OS checks this host meets', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      any-host:
        min_memory_mb: 256
        min_cpus: 1
        min_disk_free_mb: { /var/lib/opd-test-not-yet-created/images: 10 }
        kernel_min: "4.19"
        os: { id: [${osId}, ubuntu] }
`,
      dir,
      'pass.yaml',
    );
    const r = await opd(['apply', p], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('no changes');
    expect((await opd(['diff', p], { env })).code).toBe(0);
  });

  it('passes the KVM checks on a host with a usable /dev/kvm and blocks naming both on a host without one', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      kvm-host:
        cpu_virtualization: true
        kvm_device: true
`,
      dir,
      'kvm.yaml',
    );
    const r = await opd(['apply', p], { env });
    const d = await opd(['diff', p], { env });
    if (kvmUsable()) {
      // /dev/kvm counts as CPU virtualization even where the flags are hidden (nested guests)
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('no changes');
      expect(d.code).toBe(0);
    } else {
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toContain('blocked checks/require/kvm-host');
      expect(r.stdout).toMatch(/kvm_device: \/dev\/kvm (does not exist|cannot be opened)/);
      // without /dev/kvm, the flags alone decide cpu_virtualization
      if (virtFlags()) expect(r.stdout).not.toContain('cpu_virtualization:');
      else expect(r.stdout).toMatch(/cpu_virtualization: no vmx\/svm flag in \/proc\/cpuinfo/);
      expect(r.stdout).toContain('nothing was applied');
      expect(d.code).toBe(2);
    }
  });

  it('stops the whole run before anything is applied and says which check failed and by how much', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      big-host:
        min_memory_mb: 999999999
        kernel_min: "99.0"
  net:
    interfaces:
      chkbr0: { kind: bridge, up: true }
`,
      dir,
      'fail.yaml',
    );
    const before = await ns.ipDump();
    const r = await opd(['apply', p], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /blocked checks\/require\/big-host: min_memory_mb: the host has \d+ MiB of memory, needs 999999999 \(short by \d+ MiB\)/,
    );
    expect(r.stdout).toContain('kernel_min: the kernel is');
    expect(r.stdout).toContain('nothing was applied');
    expect(await ns.ipDump()).toBe(before);
    expect(await ns.ipDump()).not.toContain('chkbr0');
    const d = await opd(['diff', p], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toContain('short by');
  });

  it('fails a port check when something listens on the port', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      ports: { tcp_ports_free: [${busyPort}] }
`,
      dir,
      'port.yaml',
    );
    const r = await opd(['apply', p], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`port ${busyPort} is already listened on`);
  });

  it('rejects hostile paths with exit 65', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      disk: { min_disk_free_mb: { "/var/../etc;rm -rf /": 1 } }
`,
      dir,
      'hostile.yaml',
    );
    expect((await opd(['apply', p], { env })).code).toBe(65);
  });

  it('writes no change to the audit trail for checks that hold or block, and the trail verifies', async () => {
    const log = env.OPD_AUDIT_LOG;
    // blocked and no-op runs write nothing at all: the trail may not even exist yet
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    expect(text).not.toContain('"type":"change"');
    expect(text).not.toContain('"type":"run.start"');
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});

describe('command checks (a guide post-install check: a read-only command)', () => {
  const work = tmp('opd-checkcmd-');
  const cenv = { OPD_AUDIT_LOG: join(work, 'audit.jsonl') };
  const made = join(work, 'made');

  it('changes nothing when the command says the host is as the guide promises', async () => {
    const p = doc(
      `version: 1\nplugins:\n  checks:\n    commands:\n      kernel: { argv: [uname, -s], output: "^Linux$" }\n      true: { argv: ["true"] }\n`,
      work,
      'holds.yaml',
    );
    const d = await opd(['diff', p], { env: cenv });
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const a = await opd(['apply', p], { env: cenv });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(a.stdout).toContain('no changes');
  });

  it('runs a check that does not hold yet after the step that makes it hold, in the same run', async () => {
    const p = doc(
      `version: 1
plugins:
  exec:
    commands:
      install: { argv: [sh, -c, 'echo "tool 3.21.12" > ${made}'], creates: ${made} }
  checks:
    commands:
      tool-version: { argv: [cat, ${made}], output: "^tool 3\\\\." }
`,
      work,
      'after.yaml',
    );
    const d = await opd(['diff', p], { env: cenv });
    expect(d.code).toBe(2);
    expect(d.stdout).toMatch(/checks\/commands\/tool-version/);
    expect(d.stdout).toMatch(/cat .*made/);
    const a = await opd(['apply', p], { env: cenv });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    // the check ran after the exec step (its edge), else it would have failed
    const out = a.stdout;
    expect(out.indexOf('exec/commands/install')).toBeGreaterThanOrEqual(0);
    expect(out.indexOf('exec/commands/install')).toBeLessThan(out.indexOf('checks/commands/tool-version'));
    expect((await opd(['apply', p], { env: cenv })).stdout).toContain('no changes');
  });

  it('fails the run with the exit status or the output that does not match, naming the check', async () => {
    const p = doc(
      `version: 1\nplugins:\n  checks:\n    commands:\n      kvm-ok: { argv: [sh, -c, 'echo "INFO: /dev/kvm does not exist"; exit 1'] }\n      version: { argv: [echo, "libprotoc 2.6"], output: "^libprotoc 3\\\\." }\n      missing: { argv: [opd-no-such-command-25] }\n`,
      work,
      'fails.yaml',
    );
    const a = await opd(['apply', p], { env: cenv });
    expect(a.code).toBe(1);
    const text = a.stdout + a.stderr;
    expect(text).toMatch(/check kvm-ok does not hold: exited 1: INFO: \/dev\/kvm does not exist/);
    expect(text).toMatch(
      /check version does not hold: its output does not match \/\^libprotoc 3\\\.\/: libprotoc 2\.6/,
    );
    expect(text).toMatch(/check missing does not hold: opd-no-such-command-25 is not installed/);
    expect(text).not.toMatch(/at .*\.js:\d+/); // no stack trace
  });

  it('refuses an output pattern that is not a regular expression, and a secret in its argv, at validation', async () => {
    const bad = doc(
      `version: 1\nplugins:\n  checks:\n    commands:\n      x: { argv: ["true"], output: "(unclosed" }\n`,
      work,
      'badre.yaml',
    );
    const v = await opd(['validate', bad], { env: cenv });
    expect(v.code).toBe(65);
    expect(v.stderr).toMatch(/:5:\d+: plugins\.checks\.commands\.x\.output: not a regular expression/);
    const secret = join(work, 'pw');
    writeFileSync(secret, 'hunter2-secret-25\n', { mode: 0o600 });
    const leak = doc(
      `version: 1\nparams:\n  pw: { type: string, from_file: ${secret} }\nplugins:\n  checks:\n    commands:\n      login: { argv: [check-login, "\${param.pw}"] }\n`,
      work,
      'leak.yaml',
    );
    const l = await opd(['validate', leak], { env: cenv });
    expect(l.code).toBe(65);
    expect(l.stderr).toMatch(/a secret value is in `argv`/);
    expect(l.stderr).not.toContain('hunter2-secret-25');
  });

  it('keeps an intact audit trail', async () => {
    expect((await opd(['audit', 'verify'], { env: cenv })).code).toBe(0);
  });
});
