/**
 * firewall beside ufw: with ufw active (iptables-nft: `ip filter INPUT` policy drop), opd opens
 * ports through ufw rules it marks with the comment opd:<name>, closes them by removing those
 * rules, never touches the others, and refuses accept rules of its own nftables tables on the
 * hook where ufw drops (they could not take effect).
 *
 * Private to this file: a server namespace (ufw active there) and a client namespace joined by a
 * veth, and a private /etc/ufw: every ufw and opd command runs in a mount namespace of the
 * test's own (a holder process) where /etc/ufw is a bind mount of a copy made from ufw's
 * templates (with an empty sysctl.conf, so that ufw changes no kernel setting).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { doc, OPD, tmp, uniq } from '../helpers/opd.js';

const id = uniq(5);
const SERVER = `persist-ufw-s-${id}`;
const CLIENT = `persist-ufw-c-${id}`;
const D = tmp('opd-ufw-');
const PORTS = [9090, 9091, 9092, 5901];
let holder: ResultPromise | undefined;
const listeners: ResultPromise[] = [];

/** Run a command in the private mount namespace (private /etc/ufw). */
async function inMnt(argv: string[], env: Record<string, string> = {}) {
  const r = await execa('nsenter', ['-t', String(holder!.pid), '-m', ...argv], {
    reject: false,
    env: { OPD_LOG_LEVEL: 'warn', ...env },
    timeout: 300_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
const opd = (args: string[]) =>
  inMnt(['node', OPD, ...args], { OPD_NETNS: SERVER, OPD_AUDIT_LOG: join(D, 'audit.jsonl') });
const ufw = (args: string[]) => inMnt(['ip', 'netns', 'exec', SERVER, 'ufw', ...args]);

/** Connect from the client namespace: 'ok' when the server answers, else why not (waits at most 3 s). */
async function reach(port: number): Promise<string> {
  const js = `const s=require('net').connect({host:'10.231.0.1',port:${port},timeout:3000});s.on('data',d=>{console.log(String(d));process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})`;
  return String((await execa('ip', ['netns', 'exec', CLIENT, 'node', '-e', js])).stdout).trim();
}

describe('firewall beside ufw (ufw active in a network namespace)', () => {
  beforeAll(async () => {
    for (const ns of [SERVER, CLIENT]) await execa('ip', ['netns', 'add', ns]);
    await execa('ip', [
      'link',
      'add',
      `ufs${id}`,
      'netns',
      SERVER,
      'type',
      'veth',
      'peer',
      'name',
      `ufc${id}`,
      'netns',
      CLIENT,
    ]);
    for (const [ns, dev, a] of [
      [SERVER, `ufs${id}`, '10.231.0.1/24'],
      [CLIENT, `ufc${id}`, '10.231.0.2/24'],
    ]) {
      await execa('ip', ['-n', ns, 'addr', 'add', a, 'dev', dev]);
      await execa('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // a private /etc/ufw: ufw's files with pristine user rules, disabled, no sysctl changes
    // (from the package's templates, as its postinst does; not from the host's /etc/ufw)
    const etc = join(D, 'ufw');
    mkdirSync(etc);
    if (existsSync('/etc/ufw/applications.d'))
      cpSync('/etc/ufw/applications.d', join(etc, 'applications.d'), { recursive: true });
    for (const f of readdirSync('/usr/share/ufw/iptables')) copyFileSync(`/usr/share/ufw/iptables/${f}`, join(etc, f));
    writeFileSync(join(etc, 'ufw.conf'), 'ENABLED=no\nLOGLEVEL=low\n');
    writeFileSync(join(etc, 'sysctl.conf'), '');
    holder = execa('unshare', ['--mount', '--propagation', 'private', 'sleep', 'infinity'], { reject: false });
    for (let i = 0; i < 100 && !existsSync(`/proc/${holder.pid}/ns/mnt`); i++)
      await new Promise((r) => setTimeout(r, 20));
    // wait until the holder is in its own mount namespace (unshare has exec'd sleep)
    for (let i = 0; i < 250; i++) {
      const comm = readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim();
      if (comm === 'sleep') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const m = await inMnt(['mount', '--bind', etc, '/etc/ufw']);
    expect(m.code, m.stderr).toBe(0);
    const en = await ufw(['--force', 'enable']);
    expect(en.code, en.stdout + en.stderr).toBe(0);
    expect((await ufw(['allow', '22/tcp'])).code).toBe(0); // the admin's own rule: not opd's
    for (const p of PORTS) {
      const js = `require('net').createServer(s=>s.end('ok')).listen(${p},'0.0.0.0')`;
      const l = execa('ip', ['netns', 'exec', SERVER, 'node', '-e', js], { reject: false });
      listeners.push(l);
    }
    // the listeners are up when the server namespace has them bound
    for (let i = 0; i < 250; i++) {
      const ss = String((await execa('ip', ['netns', 'exec', SERVER, 'ss', '-Htln'])).stdout);
      if (PORTS.every((p) => ss.includes(`:${p} `))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  afterAll(async () => {
    for (const l of listeners) l.kill('SIGKILL');
    holder?.kill('SIGKILL');
    for (const ns of [SERVER, CLIENT]) await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('sees ufw active in the server namespace (iptables-nft chains with a drop policy), so unopened ports are dropped', async () => {
    const nft = String(
      (await execa('ip', ['netns', 'exec', SERVER, 'nft', 'list', 'chain', 'ip', 'filter', 'INPUT'])).stdout,
    );
    expect(nft).toContain('policy drop');
    expect(await reach(9090)).toBe('timeout');
  });

  const open = `version: 1
plugins:
  firewall:
    ufw_rules:
      grpc: { port: 9090, proto: tcp }
      vnc: { port: "5900-5999", proto: tcp }
      extra: { port: 9091, proto: tcp }
`;

  it('opens the ports the document allows through ufw, and only those', async () => {
    const a = await opd(['apply', doc(open)]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await reach(9090)).toBe('ok');
    expect(await reach(5901)).toBe('ok');
    expect(await reach(9091)).toBe('ok');
    expect(await reach(9092)).toBe('timeout');
    const st = await ufw(['status']);
    expect(st.stdout).toMatch(/9090\/tcp\s+ALLOW\s+Anywhere\s+# opd:grpc/);
    expect(st.stdout).toMatch(/5900:5999\/tcp\s+ALLOW\s+Anywhere\s+# opd:vnc/);
  });

  it('finds nothing to do on a second apply (it reads its rules back from ufw)', async () => {
    const b = await opd(['apply', doc(open)]);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(b.stdout).toContain('no changes');
  });

  it("closes a port the document removes, and leaves the admin's own rule alone", async () => {
    const a = await opd(['apply', doc(open.replace('extra: { port: 9091, proto: tcp }', 'extra: { state: absent }'))]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await reach(9091)).toBe('timeout');
    expect(await reach(9090)).toBe('ok');
    const st = await ufw(['status']);
    expect(st.stdout).not.toContain('opd:extra');
    expect(st.stdout).toMatch(/^22\/tcp\s+ALLOW/m);
  });

  it('changes a rule in place of the old one (delete, then add)', async () => {
    const a = await opd([
      'apply',
      doc(open.replace('extra: { port: 9091, proto: tcp }', 'extra: { port: 9092, proto: tcp }')),
    ]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await reach(9092)).toBe('ok');
    expect(await reach(9091)).toBe('timeout');
    expect(
      (await opd(['diff', doc(open.replace('extra: { port: 9091, proto: tcp }', 'extra: { port: 9092, proto: tcp }'))]))
        .code,
    ).toBe(0);
  });

  it('refuses accept rules in its own nftables table on the hook where ufw drops, and changes nothing', async () => {
    const a = await opd([
      'apply',
      doc(`version: 1
plugins:
  firewall:
    tables:
      quantix:
        chains:
          input: { type: filter, hook: input, priority: filter, policy: accept, rules: [{ proto: tcp, dport: 9093, action: accept }] }
`),
    ]);
    expect(a.code, a.stdout + a.stderr).toBe(1);
    expect(a.stdout).toMatch(
      /blocked firewall\/tables\/quantix: .*cannot take effect: ip filter INPUT \(policy drop, ufw\)/,
    );
    expect(a.stdout).toContain('firewall.ufw_rules');
    expect(String((await execa('ip', ['netns', 'exec', SERVER, 'nft', 'list', 'tables'])).stdout)).not.toContain(
      'quantix',
    );
  });

  it('keeps drop rules of its own tables beside ufw: a drop is final anywhere', async () => {
    const a = await opd([
      'apply',
      doc(`version: 1
plugins:
  firewall:
    tables:
      quantix:
        chains:
          input: { type: filter, hook: input, priority: filter, policy: accept, rules: [{ proto: tcp, dport: 9090, action: drop }] }
`),
    ]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await reach(9090)).toBe('timeout');
    const b = await opd([
      'apply',
      doc(`version: 1
plugins:
  firewall:
    tables:
      quantix: { state: absent }
`),
    ]);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(await reach(9090)).toBe('ok');
  });
});
