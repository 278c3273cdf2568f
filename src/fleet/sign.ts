/**
 * Signed fragments: `opd fleet put --sign-key FILE` signs each fragment with the operator's
 * ed25519 key (node:crypto); a daemon given `--fleet-keys FILE` (the operator public keys,
 * installed with its credentials at enrollment) merges only fragments signed by one of them whose
 * signed selector selects it. Several trusted keys at once make a rotation with an overlap.
 *
 * What is signed: the canonical JSON of the fragment's id, order, selector, document, its hash
 * and put_at — everything a host acts on. Not signed: `only_hosts` (a rollout's progress, which
 * the per-host copies do not carry) and the signature itself.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonical, sha256 } from '../core/canonical.js';
import { OpdError } from '../core/errors.js';
import { selects, selectorText, type Fragment } from './merge.js';

export interface Signature {
  alg: 'ed25519';
  /** the signing key's id: `ed25519:` and the first 16 hex digits of the sha256 of its public key (SPKI DER) */
  key: string;
  /** base64 */
  sig: string;
}

export type TrustedKeys = Map<string, KeyObject>;

/** The bytes a fragment's signature covers. */
export function signedPayload(f: Fragment): Buffer {
  return Buffer.from(
    canonical({
      id: f.id,
      order: f.order,
      selector: f.selector,
      document: f.document,
      hash: f.hash,
      put_at: f.put_at,
    }),
  );
}

export function keyId(pub: KeyObject): string {
  const der = pub.export({ type: 'spki', format: 'der' });
  return `ed25519:${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

function readKeyFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new OpdError('usage', `cannot read ${flag} ${file}: ${(err as Error).message}`, {
      hint: `give ${flag} a readable file (opd fleet keygen --out FILE makes a key pair)`,
    });
  }
}

/** The operator's private key (PEM, PKCS#8, ed25519). */
export function loadSigningKey(file: string): { key: KeyObject; id: string } {
  const text = readKeyFile(file, '--sign-key');
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (err) {
    throw new OpdError('usage', `--sign-key ${file} is not a PEM private key: ${(err as Error).message}`, {
      hint: 'opd fleet keygen --out FILE makes an ed25519 key pair (FILE and FILE.pub)',
    });
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new OpdError('usage', `--sign-key ${file} is a ${key.asymmetricKeyType} key, not ed25519`, {
      hint: 'opd fleet keygen --out FILE makes an ed25519 key pair',
    });
  return { key, id: keyId(createPublicKey(key)) };
}

/** The trusted operator keys: one or more PEM public keys (ed25519) in one file. */
export function loadTrustedKeys(file: string, flag = '--fleet-keys'): TrustedKeys {
  const text = readKeyFile(file, flag);
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (!blocks.length)
    throw new OpdError('usage', `${flag} ${file} holds no PEM public key (-----BEGIN PUBLIC KEY-----)`, {
      hint: 'give the FILE.pub that opd fleet keygen --out FILE wrote; several keys may be concatenated',
    });
  const out: TrustedKeys = new Map();
  blocks.forEach((b, i) => {
    let k: KeyObject;
    try {
      k = createPublicKey(b);
    } catch (err) {
      throw new OpdError('usage', `${flag} ${file}: key ${i + 1} is not a public key: ${(err as Error).message}`);
    }
    if (k.asymmetricKeyType !== 'ed25519')
      throw new OpdError('usage', `${flag} ${file}: key ${i + 1} is a ${k.asymmetricKeyType} key, not ed25519`);
    out.set(keyId(k), k);
  });
  return out;
}

export function signFragment<F extends Fragment>(f: F, key: { key: KeyObject; id: string }): F {
  const { signature: _old, ...rest } = f;
  const sig = sign(null, signedPayload(rest as Fragment), key.key).toString('base64');
  return { ...rest, signature: { alg: 'ed25519', key: key.id, sig } } as F;
}

/** Why the fragment is not trusted, or null when a trusted key signed it. */
export function verifyFragment(f: Fragment, trusted: TrustedKeys): string | null {
  const s = f.signature;
  if (!s || typeof s !== 'object') return 'unsigned';
  if (s.alg !== 'ed25519' || typeof s.key !== 'string' || typeof s.sig !== 'string')
    return 'a malformed signature (not ed25519)';
  const pub = trusted.get(s.key);
  if (!pub) return `signed by ${s.key}, which is not a trusted operator key`;
  let ok = false;
  try {
    ok = verify(null, signedPayload(f), pub, Buffer.from(s.sig, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) return `a bad signature (claims ${s.key}): the fragment was changed after it was signed`;
  if (f.hash !== sha256(canonical(f.document))) return 'its document does not match its signed hash';
  return null;
}

/**
 * Verify a host's copy: a trusted signature, and a signed selector that selects this host by its
 * name or by the labels it is configured with (a copy of another host's fragment placed under its
 * keys is refused).
 */
export function verifyCopy(
  f: Fragment,
  trusted: TrustedKeys,
  host: string,
  labels: Record<string, string>,
): string | null {
  const why = verifyFragment(f, trusted);
  if (why) return why;
  if (!selects({ ...f, only_hosts: undefined }, { host, labels }))
    return `its signed selector ${selectorText(f.selector)} does not select this host (${host}${
      Object.keys(labels).length
        ? `, labels ${Object.entries(labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(',')}`
        : ''
    })`;
  return null;
}
