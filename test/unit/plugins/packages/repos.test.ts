/**
 * The pure parts of packages.repositories: OpenPGP fingerprints and armor (checked against a key
 * gpg made: test/fixtures/openpgp, fingerprint as gpg --fingerprint printed it) and the deb822
 * file opd writes and reads back.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { armor, dearmor, fingerprints, normalizeFingerprint } from '../../../../src/plugins/packages/openpgp.js';
import { parseDeb822, renderRepository } from '../../../../src/plugins/packages/repos.js';
import { OpdError } from '../../../../src/core/errors.js';

const FPR = '29F825E4AE851FFE43E25C4E0E7938D5775D0A4E';
const asc = readFileSync(new URL('../../../fixtures/openpgp/fixture.asc', import.meta.url), 'utf8');
const bin = readFileSync(new URL('../../../fixtures/openpgp/fixture.gpg', import.meta.url));

describe('OpenPGP key handling for repository keys', () => {
  it('computes the same v4 fingerprint as gpg from an armored key and from a binary one', () => {
    expect(fingerprints(dearmor(asc, 'asc'), 'asc')).toEqual([FPR]);
    expect(fingerprints(dearmor(bin, 'gpg'), 'gpg')).toEqual([FPR]);
    expect(dearmor(asc, 'asc').equals(bin)).toBe(true);
  });

  it('armors binary packets into a block that dearmors to the same bytes, with a checksum', () => {
    const text = armor(bin);
    expect(text).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n/);
    expect(text).toMatch(/\n=[A-Za-z0-9+/]{4}\n-----END PGP PUBLIC KEY BLOCK-----$/);
    expect(dearmor(text, 'x').equals(bin)).toBe(true);
  });

  it('refuses a damaged armored key (its checksum does not match) and text that is no key', () => {
    const lines = asc.split('\n');
    const i = lines.findIndex((l, n) => n > 2 && l.length > 40);
    lines[i] = (lines[i][0] === 'A' ? 'B' : 'A') + lines[i].slice(1);
    expect(() => dearmor(lines.join('\n'), 'damaged')).toThrow(/checksum does not match/);
    expect(() => dearmor('hello', 'text')).toThrow(OpdError);
    expect(() => fingerprints(Buffer.from([0x01, 0x02]), 'junk')).toThrow(/not a valid OpenPGP key/);
  });

  it('reads a fingerprint as people write it', () => {
    expect(normalizeFingerprint('0x29f8 25e4 ae85 1ffe 43e2  5c4e 0e79 38d5 775d 0a4e')).toBe(FPR);
  });
});

describe('the deb822 file of a repository', () => {
  it('embeds the key in Signed-By and reads back the fields it wrote', () => {
    const text = renderRepository(
      'node',
      { uris: ['https://deb.nodesource.com/node_20.x'], suites: ['nodistro'], components: ['main'] },
      bin,
    );
    expect(text).toMatch(/^Types: deb$/m);
    expect(text).toMatch(/^Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n \.\n/m);
    const f = parseDeb822(text);
    expect(f.uris).toBe('https://deb.nodesource.com/node_20.x');
    expect(f.suites).toBe('nodistro');
    expect(f.components).toBe('main');
    expect(fingerprints(dearmor(f['signed-by'], 'signed-by'), 'signed-by')).toEqual([FPR]);
  });
});
