/**
 * examples/quantix-kvm-node.yaml end to end: KVM checks, packages, the node user in libvirt and
 * kvm, libvirtd enabled, the guide's `ufw allow` openings; then the absent document. As on the
 * guide's Ubuntu, ufw is active: in a network namespace of the test's own (OPD_NETNS) with a
 * private /etc/ufw (every opd run is in a mount namespace of the test's own where /etc/ufw is a
 * bind mount of a copy made from ufw's templates), and a client namespace over a veth proves the
 * opened ports answer and another does not. libvirtd is a host daemon this shared machine
 * already runs for the other tests (scripts/backends/libvirt.sh): see test/helpers/examples.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, tmp, uniq, type OpdRun } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import {
  APT_LOCK,
  EXAMPLES,
  exists,
  expectPreconditions,
  expectSecondApplyNoChanges,
  forThisHost,
  opdIn,
  pending,
  systemctl,
} from '../helpers/examples.js';

const dir = tmp('opd-e2e-quantix-');
// the guide's $USER: an existing login the test creates (the document only adds it to libvirt and kvm)
const OPERATOR = `opdqx${Math.random().toString(36).slice(2, 7)}`;
// packages through the default backend (auto); the operator is the document's parameter
const env: Record<string, string> = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_VAR_operator: OPERATOR };
const NAME = 'quantix-kvm-node.yaml';
const ORIGINAL = join(EXAMPLES, NAME);
const ABSENT = join(EXAMPLES, 'quantix-kvm-node-absent.yaml');
const HOST_DAEMONS = ['libvirtd.service'];
// on a host without /dev/kvm (or smaller than the guide asks) the unmet checks are asserted, then left out
const { doc: DOC, unmet: UNMET } = forThisHost(NAME, HOST_DAEMONS);

let ns: Netns;
let client: Netns;
let holder: ResultPromise | undefined;
const listeners: ResultPromise[] = [];
const id = uniq(5);
/** A command in the test's mount namespace (private /etc/ufw). */
async function inMnt(argv: string[], extra: Record<string, string> = {}): Promise<OpdRun> {
  const r = await execa('nsenter', ['-t', String(holder!.pid), '-m', ...argv], {
    reject: false,
    env: { OPD_LOG_LEVEL: 'warn', ...extra },
    timeout: 900_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
const run = (args: string[]): Promise<OpdRun> =>
  inMnt([...(args[0] === 'apply' ? ['flock', APT_LOCK] : []), 'node', OPD, ...args], env);
const ufw = (args: string[]) => inMnt(['ip', 'netns', 'exec', ns.name, 'ufw', ...args]);
/** Connect from the client namespace: 'ok' when the server answers, else why not (waits at most 3 s). */
async function reach(port: number): Promise<string> {
  const js = `const s=require('net').connect({host:'10.232.0.1',port:${port},timeout:3000});s.on('data',d=>{console.log(String(d));process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})`;
  return String((await execa('ip', ['netns', 'exec', client.name, 'node', '-e', js])).stdout).trim();
}

describe('examples/quantix-kvm-node.yaml', () => {
  beforeAll(async () => {
    await ensureSystemd();
    ns = await createNetns('opdqx');
    client = await createNetns('opdqxc');
    env.OPD_NETNS = ns.name;
    await execa('useradd', ['--create-home', '--shell', '/bin/bash', OPERATOR]);
    await execa('ip', [
      'link',
      'add',
      `qxs${id}`,
      'netns',
      ns.name,
      'type',
      'veth',
      'peer',
      'name',
      `qxc${id}`,
      'netns',
      client.name,
    ]);
    for (const [n, dev, a] of [
      [ns.name, `qxs${id}`, '10.232.0.1/24'],
      [client.name, `qxc${id}`, '10.232.0.2/24'],
    ]) {
      await execa('ip', ['-n', n, 'addr', 'add', a, 'dev', dev]);
      await execa('ip', ['-n', n, 'link', 'set', dev, 'up']);
      await execa('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    }
    // a private /etc/ufw from the package's templates (disabled, no sysctl changes), bound over
    // /etc/ufw in a mount namespace held by a sleeping process
    const etc = join(dir, 'ufw');
    mkdirSync(etc);
    if (existsSync('/etc/ufw/applications.d'))
      cpSync('/etc/ufw/applications.d', join(etc, 'applications.d'), { recursive: true });
    for (const f of readdirSync('/usr/share/ufw/iptables')) copyFileSync(`/usr/share/ufw/iptables/${f}`, join(etc, f));
    writeFileSync(join(etc, 'ufw.conf'), 'ENABLED=no\nLOGLEVEL=low\n');
    writeFileSync(join(etc, 'sysctl.conf'), '');
    holder = execa('unshare', ['--mount', '--propagation', 'private', 'sleep', 'infinity'], { reject: false });
    for (
      let i = 0;
      i < 250 &&
      !(existsSync(`/proc/${holder.pid}/comm`) && readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim() === 'sleep');
      i++
    )
      await new Promise((r) => setTimeout(r, 20));
    const m = await inMnt(['mount', '--bind', etc, '/etc/ufw']);
    expect(m.code, m.stderr).toBe(0);
    // the guide's Ubuntu host: ufw active (iptables-nft INPUT policy drop in the namespace)
    const en = await ufw(['--force', 'enable']);
    expect(en.code, en.stdout + en.stderr).toBe(0);
    for (const p of [9090, 5901, 9091])
      listeners.push(
        execa(
          'ip',
          [
            'netns',
            'exec',
            ns.name,
            'node',
            '-e',
            `require('net').createServer(s=>s.end('ok')).listen(${p},'0.0.0.0')`,
          ],
          { reject: false },
        ),
      );
    for (let i = 0; i < 250; i++) {
      const ss = String((await execa('ip', ['netns', 'exec', ns.name, 'ss', '-Htln'])).stdout);
      if ([9090, 5901, 9091].every((p) => ss.includes(`:${p} `))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  afterAll(async () => {
    await run(['apply', ABSENT]);
    for (const l of listeners) l.kill('SIGKILL');
    holder?.kill('SIGKILL');
    await client.remove();
    await ns.remove();
    await execa('userdel', ['--remove', OPERATOR], { reject: false });
  });

  it('validates, and without its operator parameter fails (exit 65) naming it', async () => {
    expect((await run(['validate', ORIGINAL])).code).toBe(0);
    expect((await run(['validate', ABSENT])).code).toBe(0);
    const { OPD_VAR_operator: _, ...without } = env;
    const v = await opdIn(undefined, ['validate', ORIGINAL], without);
    expect(v.code).toBe(65);
    expect(v.stderr).toMatch(
      /quantix-kvm-node\.yaml:\d+:\d+: \/params\/operator: required parameter "operator" is not set/,
    );
  });

  it('has changes pending on a fresh host (diff exits 2)', async () => {
    const r = await run(['diff', ORIGINAL]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toContain('firewall/ufw_rules/quantix-grpc');
    // ufw is active and drops what is not allowed
    expect(await reach(9090)).toBe('timeout');
  });

  it('is blocked by exactly the preconditions this host cannot meet, and then changes nothing', async () => {
    await expectPreconditions(run, ORIGINAL, UNMET);
  });

  it('converges with one apply; a second apply exits 0 with no changes', async () => {
    const a = await run(['apply', DOC]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    await expectSecondApplyNoChanges(run, DOC);
    const d = await run(['diff', DOC]);
    expect(d.code, d.stdout).toBe(0);
    const o = await run(['diff', ORIGINAL, '-o', 'json']);
    const allowed = [
      ...HOST_DAEMONS.map((u) => `systemd/units/${u}`),
      ...Object.keys(UNMET).map((r) => `checks/require/${r}`),
    ];
    for (const x of pending(o)) expect(allowed).toContain(x);
  });

  it("left the operator's login in libvirt and kvm, libvirtd enabled, the guide's ports open through ufw", async () => {
    const groups = String((await execa('id', ['-nG', OPERATOR])).stdout).split(/\s+/);
    expect(groups).toEqual(expect.arrayContaining(['libvirt', 'kvm']));
    expect(await systemctl(['is-enabled', 'libvirtd.service'])).toBe('enabled');
    const st = await ufw(['status']);
    expect(st.stdout).toMatch(/^Status: active/m);
    expect(st.stdout).toMatch(/9090\/tcp\s+ALLOW\s+Anywhere\s+# opd:quantix-grpc/);
    expect(st.stdout).toMatch(/5900:5999\/tcp\s+ALLOW\s+Anywhere\s+# opd:quantix-vnc/);
    expect(await reach(9090)).toBe('ok');
    expect(await reach(5901)).toBe('ok');
    expect(await reach(9091)).toBe('timeout'); // not in the document: ufw still drops it
    expect(await exists('dpkg-query', ['-W', 'virtinst', 'protobuf-compiler', 'cpu-checker'])).toBe(true);
  });

  it('keeps an intact audit trail', async () => {
    expect((await run(['audit', 'verify'])).code).toBe(0);
  });

  it('is undone by the absent document', async () => {
    const a = await run(['apply', ABSENT]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const groups = String((await execa('id', ['-nG', OPERATOR])).stdout).split(/\s+/);
    expect(groups).not.toContain('libvirt');
    expect(groups).not.toContain('kvm');
    expect(await exists('getent', ['passwd', OPERATOR])).toBe(true); // the login was never opd's
    expect((await ufw(['status'])).stdout).not.toContain('opd:quantix');
    expect(await reach(9090)).toBe('timeout');
    expect((await run(['diff', ABSENT])).code).toBe(0);
    expect((await run(['audit', 'verify'])).code).toBe(0);
  });
});
