/**
 * The dns plugin under sandbox roots (--root): a host whose /etc/resolv.conf is a file, and a
 * host whose /etc/resolv.conf is systemd-resolved's stub symlink (detected: opd writes resolved's
 * drop-in instead). The machine's own /etc/resolv.conf is never touched.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { join } from 'node:path';
import { doc as mkdoc, opd, tmp } from '../helpers/opd.js';

const work = tmp('opd-dns-');
let docs = 0;
const doc = (text: string, name = `state-${++docs}.yaml`) => mkdoc(text, work, name);
const hostResolv = readFileSync('/etc/resolv.conf', 'utf8');

function sandbox(name: string): { root: string; env: Record<string, string> } {
  const root = join(work, name);
  mkdirSync(join(root, 'etc'), { recursive: true });
  return { root, env: { OPD_ROOT: root, OPD_AUDIT_LOG: join(work, `${name}-audit.jsonl`) } };
}

const DOC = `version: 1
plugins:
  dns:
    resolvers:
      system:
        servers: [192.0.2.53, 192.0.2.54]
        search: [lab.example, example.org]
`;

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the dns plugin on a host that uses /etc/resolv.conf', () => {
  const { root, env } = sandbox('plain');
  const conf = join(root, 'etc/resolv.conf');
  writeFileSync(conf, '# written by the installer\nnameserver 10.9.9.9\nsearch old.example\noptions timeout:2\n');

  it('replaces the nameserver and search lines, keeps the options it was not told about', async () => {
    const d = await opd(['diff', doc(DOC)], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toContain(
      '~ dns/resolvers/system: servers 10.9.9.9 → 192.0.2.53 192.0.2.54, search old.example → lab.example example.org',
    );
    expect(readFileSync(conf, 'utf8')).toContain('nameserver 10.9.9.9');
    const r = await opd(['apply', doc(DOC)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verification passed/);
    const text = readFileSync(conf, 'utf8');
    expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'options timeout:2',
      'search lab.example example.org',
      'nameserver 192.0.2.53',
      'nameserver 192.0.2.54',
      '',
    ]);
    expect(readFileSync('/etc/resolv.conf', 'utf8')).toBe(hostResolv);
  });

  it('reports zero changes on a second apply', async () => {
    const r = await opd(['apply', doc(DOC)], { env });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('no changes: the host matches the document');
  });

  it('manages options when the document names them', async () => {
    const r = await opd(['apply', doc(DOC + '        options: [ndots:2, rotate]\n')], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(conf, 'utf8')).toContain('options ndots:2 rotate\n');
    expect(readFileSync(conf, 'utf8')).not.toContain('timeout:2');
  });

  it("accepts op-dbus's dnsresolver section (items with id and mode: enforce)", async () => {
    const json = JSON.stringify({
      version: 1,
      plugins: {
        dnsresolver: {
          version: 1,
          items: [
            {
              id: 'resolvconf',
              mode: 'enforce',
              servers: ['198.51.100.1'],
              search: ['corp.example'],
              options: ['ndots:2', 'rotate'],
            },
          ],
        },
      },
    });
    const r = await opd(['apply', doc(json, 'opdbus.json')], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('dns/resolvers/resolvconf');
    expect(readFileSync(conf, 'utf8')).toContain('nameserver 198.51.100.1\n');
    expect((await opd(['apply', doc(json, 'opdbus2.json')], { env })).stdout.trim()).toBe(
      'no changes: the host matches the document',
    );
  });

  it("refuses op-dbus's observe-only mode by name (exit 65) and changes nothing", async () => {
    const before = readFileSync(conf, 'utf8');
    const json = JSON.stringify({
      version: 1,
      plugins: {
        dnsresolver: { version: 1, items: [{ id: 'resolvconf', mode: 'observe-only', servers: ['203.0.113.9'] }] },
      },
    });
    const r = await opd(['apply', doc(json, 'observe.json')], { env });
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/op-dbus's mode: observe-only has no opd equivalent|observe-only/);
    expect(r.stderr).toMatch(/opd diff/);
    expect(readFileSync(conf, 'utf8')).toBe(before);
  });
});

describe("the dns plugin on a host whose /etc/resolv.conf is systemd-resolved's stub", () => {
  const { root, env } = sandbox('resolved');
  const conf = join(root, 'etc/resolv.conf');
  mkdirSync(join(root, 'run/systemd/resolve'), { recursive: true });
  writeFileSync(join(root, 'run/systemd/resolve/stub-resolv.conf'), 'nameserver 127.0.0.53\noptions edns0 trust-ad\n');
  symlinkSync('../run/systemd/resolve/stub-resolv.conf', conf);
  const dropin = join(root, 'etc/systemd/resolved.conf.d/90-opd.conf');

  it('is detected (doctor says so) and gets a resolved drop-in, the stub symlink stays', async () => {
    const doc1 = doc(DOC);
    const dr = await opd(['doctor', '--plugin', 'dns'], { env });
    expect(dr.stdout).toMatch(
      /resolved: \/etc\/resolv\.conf → \.\.\/run\/systemd\/resolve\/stub-resolv\.conf \(systemd-resolved\)/,
    );
    const r = await opd(['apply', doc1], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(dropin, 'utf8')).toBe(
      '# managed by opd (dns/resolvers/system)\n[Resolve]\nDNS=192.0.2.53 192.0.2.54\nDomains=lab.example example.org\n',
    );
    expect(lstatSync(conf).isSymbolicLink()).toBe(true);
    expect(readlinkSync(conf)).toBe('../run/systemd/resolve/stub-resolv.conf');
    expect((await opd(['apply', doc1], { env })).stdout.trim()).toBe('no changes: the host matches the document');
  });

  it('blocks options, which resolved does not have, and applies nothing', async () => {
    const before = readFileSync(dropin, 'utf8');
    const r = await opd(
      [
        'apply',
        doc(
          DOC.replace('search: [lab.example, example.org]', 'search: [other.example]') + '        options: [ndots:2]\n',
        ),
      ],
      { env },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/blocked dns\/resolvers\/system: .*systemd-resolved.*no resolv\.conf options/);
    expect(readFileSync(dropin, 'utf8')).toBe(before);
  });

  it('replaces the stub with a file when the resolver says backend: resolv.conf', async () => {
    const r = await opd(['apply', doc(DOC + '        backend: resolv.conf\n        options: [ndots:2]\n')], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("replace systemd-resolved's stub symlink /etc/resolv.conf with a file");
    expect(lstatSync(conf).isFile()).toBe(true);
    expect(readFileSync(conf, 'utf8')).toContain('nameserver 192.0.2.53\nnameserver 192.0.2.54\n');
    expect(existsSync(join(root, 'run/systemd/resolve/stub-resolv.conf'))).toBe(true);
    expect(
      (
        await opd(['apply', doc(DOC + '        backend: resolv.conf\n        options: [ndots:2]\n')], { env })
      ).stdout.trim(),
    ).toBe('no changes: the host matches the document');
  });
});
