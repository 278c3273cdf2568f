import { describe, it, expect } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonical, sha256 } from '../../../src/core/canonical.js';
import type { Fragment } from '../../../src/fleet/merge.js';
import {
  keyId,
  loadSigningKey,
  loadTrustedKeys,
  signFragment,
  verifyCopy,
  verifyFragment,
} from '../../../src/fleet/sign.js';

const dir = mkdtempSync(join(tmpdir(), 'opd-sign-'));
function pair(name: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, name), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, `${name}.pub`), publicKey.export({ type: 'spki', format: 'pem' }));
  return { key: loadSigningKey(join(dir, name)), pub: join(dir, `${name}.pub`), id: keyId(publicKey) };
}
const document = {
  version: 1,
  plugins: { files: { paths: { '/etc/motd': { content: 'x\n' } } } },
} as Fragment['document'];
const frag: Fragment = {
  id: 'base',
  order: 10,
  selector: { labels: { role: 'kvm' } },
  document,
  hash: sha256(canonical(document)),
  put_at: '2026-12-07T00:00:00.000Z',
};

describe('signed fleet fragments', () => {
  const old = pair('old');
  const next = pair('next');
  const other = pair('other');
  const both = join(dir, 'both.pub');
  writeFileSync(both, [old.pub, next.pub].map((p) => readFileSync(p, 'utf8')).join(''));

  it('accepts a fragment signed by a trusted key, whatever its rollout host list', () => {
    const s = signFragment(frag, old.key);
    expect(s.signature).toMatchObject({ alg: 'ed25519', key: old.id });
    expect(verifyFragment(s, loadTrustedKeys(old.pub))).toBeNull();
    expect(verifyFragment({ ...s, only_hosts: ['kvm1'] }, loadTrustedKeys(old.pub))).toBeNull();
  });

  it('refuses an unsigned fragment, one signed by an unknown key, and one changed after signing', () => {
    const t = loadTrustedKeys(old.pub);
    expect(verifyFragment(frag, t)).toBe('unsigned');
    expect(verifyFragment(signFragment(frag, other.key), t)).toContain(`signed by ${other.id}, which is not a trusted`);
    const s = signFragment(frag, old.key);
    const changed = {
      ...s,
      document: { version: 1, plugins: { files: { paths: { '/etc/motd': { content: 'evil\n' } } } } },
    };
    expect(verifyFragment(changed as Fragment, t)).toContain('a bad signature');
    expect(verifyFragment({ ...s, selector: { labels: { role: 'db' } } }, t)).toContain('a bad signature');
    expect(verifyFragment({ ...s, signature: { ...s.signature!, sig: 'AAAA' } }, t)).toContain('a bad signature');
  });

  it('trusts several keys at once for a rotation, the old and the new', () => {
    const t = loadTrustedKeys(both);
    expect([...t.keys()].sort()).toEqual([old.id, next.id].sort());
    expect(verifyFragment(signFragment(frag, old.key), t)).toBeNull();
    expect(verifyFragment(signFragment(frag, next.key), t)).toBeNull();
    expect(verifyFragment(signFragment(frag, next.key), loadTrustedKeys(old.pub))).toContain('not a trusted');
  });

  it('refuses a copy whose signed selector does not select the host it is kept for', () => {
    const s = signFragment(frag, old.key);
    const t = loadTrustedKeys(old.pub);
    expect(verifyCopy(s, t, 'kvm1', { role: 'kvm' })).toBeNull();
    expect(verifyCopy(s, t, 'db1', { role: 'db' })).toBe(
      'its signed selector role=kvm does not select this host (db1, labels role=db)',
    );
  });

  it('refuses key files that hold no ed25519 key, naming the file', () => {
    const bad = join(dir, 'bad.pub');
    writeFileSync(bad, 'not a key\n');
    expect(() => loadTrustedKeys(bad)).toThrow(/--fleet-keys .*bad\.pub holds no PEM public key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(bad, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(() => loadTrustedKeys(bad)).toThrow(/key 1 is a rsa key, not ed25519/);
    writeFileSync(bad, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => loadSigningKey(bad)).toThrow(/is a rsa key, not ed25519/);
  });
});
