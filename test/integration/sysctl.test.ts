/**
 * sysctl: net.* keys inside a network namespace the test creates (they are per namespace),
 * persistence files under a sandbox root; the host's own values never change.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, doc as mkdoc, tmp, uniq, opd, type OpdRun } from '../helpers/opd.js';

const ns = `opdt${uniq(6)}`;
const work = tmp('opd-sysctl-');
/** Documents go into the test's own directory (removed afterwards), one file per document. */
let docs = 0;
const doc = (text: string) => mkdoc(text, work, `state-${++docs}.yaml`);
const root = join(work, 'root');
// --root must be an existing directory (a missing one is refused with exit 64)
mkdirSync(root, { recursive: true });
const env = { OPD_AUDIT_LOG: join(work, 'audit.jsonl'), OPD_ROOT: root, OPD_LOG_LEVEL: 'warn' };
const hostForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
const hostRange = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');

async function inNs(args: string[]): Promise<OpdRun> {
  const r = await execa('ip', ['netns', 'exec', ns, 'node', OPD, ...args], { reject: false, env });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
async function nsRead(key: string): Promise<string> {
  const r = await execa('ip', ['netns', 'exec', ns, 'cat', `/proc/sys/${key.replace(/\./g, '/')}`]);
  return r.stdout.trim().split(/\s+/).join(' ');
}
function persisted(): string {
  const dir = join(root, 'etc/sysctl.d');
  if (!existsSync(dir)) return '';
  return readdirSync(dir)
    .sort()
    .map((f) => `${f}\n${readFileSync(join(dir, f), 'utf8')}`)
    .join('\n');
}

beforeAll(async () => {
  await execa('ip', ['netns', 'add', ns]);
});
afterAll(async () => {
  await execa('ip', ['netns', 'del', ns], { reject: false });
  rmSync(work, { recursive: true, force: true });
});

const v1 = `version: 1
plugins:
  sysctl:
    keys:
      net.ipv4.ip_forward: { value: 1 }
      net.ipv4.ip_local_port_range: { value: "40000 50000" }
`;
const v2 = `version: 1
plugins:
  sysctl:
    net.ipv4.ip_forward: 0
    net.ipv4.ip_local_port_range: "41000   51000"
`;
const absent = `version: 1
plugins:
  sysctl:
    keys:
      net.ipv4.ip_forward: { state: absent }
      net.ipv4.ip_local_port_range: { state: absent }
`;

describe('sysctl in a network namespace', () => {
  it('sets runtime values and writes persistence files', async () => {
    const r = await inNs(['apply', doc(v1)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await nsRead('net.ipv4.ip_forward')).toBe('1');
    expect(await nsRead('net.ipv4.ip_local_port_range')).toBe('40000 50000');
    expect(readFileSync(join(root, 'etc/sysctl.d/90-opd-net.ipv4.ip_forward.conf'), 'utf8')).toContain(
      'net.ipv4.ip_forward = 1\n',
    );
  });

  it('never changes the host namespace', () => {
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(hostForward);
    expect(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).toBe(hostRange);
  });

  it('reports no changes on a second apply and exits 0 from diff', async () => {
    expect((await inNs(['apply', doc(v1)])).stdout).toContain('no changes');
    expect((await inNs(['diff', doc(v1)])).code).toBe(0);
  });

  it('leaves values and files untouched when diffing pending changes', async () => {
    const before = [await nsRead('net.ipv4.ip_forward'), await nsRead('net.ipv4.ip_local_port_range'), persisted()];
    const r = await inNs(['diff', doc(v2)]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('"1" → "0"');
    expect([await nsRead('net.ipv4.ip_forward'), await nsRead('net.ipv4.ip_local_port_range'), persisted()]).toEqual(
      before,
    );
  });

  it('changes values (shorthand form, whitespace normalized)', async () => {
    const r = await inNs(['apply', doc(v2)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await nsRead('net.ipv4.ip_forward')).toBe('0');
    expect(await nsRead('net.ipv4.ip_local_port_range')).toBe('41000 51000');
    expect(persisted()).toContain('net.ipv4.ip_local_port_range = 41000 51000\n');
    expect((await inNs(['apply', doc(v2)])).stdout).toContain('no changes');
  });

  it('removes the persistence files of keys marked absent', async () => {
    const r = await inNs(['apply', doc(absent)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(persisted()).toBe('');
    expect((await inNs(['apply', doc(absent)])).stdout).toContain('no changes');
  });

  it('fails clearly for a key the kernel does not have', async () => {
    const r = await inNs(['apply', doc(`version: 1\nplugins:\n  sysctl:\n    net.ipv4.opd_no_such_key: 1\n`)]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('unknown sysctl net.ipv4.opd_no_such_key');
  });

  it('rejects hostile keys and values (exit 65)', async () => {
    for (const bad of [
      `"net/../../etc/passwd": 1`,
      `"net..ipv4": 1`,
      `net.ipv4.ip_forward: "1\\nkernel.panic = 1"`,
      `"net.ipv4.ip_forward;id": 1`,
    ]) {
      const r = await opd(['apply', doc(`version: 1\nplugins:\n  sysctl:\n    ${bad}\n`)], { env });
      expect(r.code, bad + r.stdout + r.stderr).toBe(65);
    }
  });

  it('keeps an intact audit chain', async () => {
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
