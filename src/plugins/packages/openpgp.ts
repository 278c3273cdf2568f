/**
 * Just enough OpenPGP (RFC 4880) for repository keys: dearmor (and armor) a public key block,
 * walk its packets, and compute each primary key's v4 fingerprint (SHA-1 of 0x99, the two-byte
 * length and the key packet's body), so that a key fetched from a URL is checked against the
 * fingerprint the document pins without gpg on the host. Pure functions, no processes.
 */
import { createHash } from 'node:crypto';
import { OpdError } from '../../core/errors.js';

const BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const END = '-----END PGP PUBLIC KEY BLOCK-----';

/** CRC-24 of RFC 4880 6.1 (the armor checksum). */
function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const b of data) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/** The binary packets of a key: armored text is decoded (its checksum checked), binary is taken as is. */
export function dearmor(key: Buffer | string, what: string): Buffer {
  const text = typeof key === 'string' ? key : key.subarray(0, 64).toString('latin1');
  if (!text.includes(BEGIN)) {
    if (typeof key === 'string')
      throw new OpdError('invalid-document', `${what}: not an OpenPGP public key block (no "${BEGIN}" line)`, {
        hint: 'give the key as exported by gpg --export --armor, or as binary (a .gpg file)',
      });
    return key;
  }
  const all = typeof key === 'string' ? key : key.toString('latin1');
  const start = all.indexOf(BEGIN);
  const stop = all.indexOf(END, start);
  if (stop < 0) throw new OpdError('invalid-document', `${what}: the key block has no "${END}" line`);
  const lines = all
    .slice(start + BEGIN.length, stop)
    .split(/\r?\n/)
    .map((l) => l.trim());
  // armor headers (Version: …, Comment: …) end at the first empty line
  const blank = lines.indexOf('', 1);
  const body = lines.slice(blank >= 0 && lines.slice(0, blank).some((l) => l.includes(':')) ? blank + 1 : 0);
  let sum: string | undefined;
  const b64 = body
    .filter((l) => {
      if (/^=[A-Za-z0-9+/]{4}$/.test(l)) {
        sum = l.slice(1);
        return false;
      }
      return l !== '';
    })
    .join('');
  const bin = Buffer.from(b64, 'base64');
  if (!bin.length) throw new OpdError('invalid-document', `${what}: the key block is empty`);
  if (sum !== undefined && Buffer.from(sum, 'base64').readUIntBE(0, 3) !== crc24(bin))
    throw new OpdError('invalid-document', `${what}: the key block's checksum does not match (a damaged copy)`, {
      hint: 'copy the key again, whole',
    });
  return bin;
}

/** ASCII armor of binary key packets (64-column base64 and the CRC-24 line). */
export function armor(bin: Buffer): string {
  const b64 = bin.toString('base64');
  const lines: string[] = [BEGIN, ''];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  const c = crc24(bin);
  lines.push('=' + Buffer.from([c >> 16, (c >> 8) & 0xff, c & 0xff]).toString('base64'), END);
  return lines.join('\n');
}

interface Packet {
  tag: number;
  body: Buffer;
}

function packets(bin: Buffer, what: string): Packet[] {
  const out: Packet[] = [];
  let i = 0;
  const bad = () =>
    new OpdError('invalid-document', `${what}: not a valid OpenPGP key (a packet runs past the end at byte ${i})`, {
      hint: 'give the key as exported by gpg --export (binary) or --export --armor',
    });
  while (i < bin.length) {
    const h = bin[i++];
    if (!(h & 0x80)) throw bad();
    let tag: number;
    let len: number;
    if (h & 0x40) {
      tag = h & 0x3f;
      const o = bin[i++];
      if (o === undefined) throw bad();
      if (o < 192) len = o;
      else if (o < 224) len = ((o - 192) << 8) + bin[i++] + 192;
      else if (o === 255) {
        len = bin.readUInt32BE(i);
        i += 4;
      } else throw bad(); // partial lengths are not used by key packets
    } else {
      tag = (h >> 2) & 0x0f;
      const lt = h & 3;
      if (lt === 0) len = bin[i++];
      else if (lt === 1) {
        len = bin.readUInt16BE(i);
        i += 2;
      } else if (lt === 2) {
        len = bin.readUInt32BE(i);
        i += 4;
      } else len = bin.length - i;
    }
    if (len === undefined || Number.isNaN(len) || i + len > bin.length) throw bad();
    out.push({ tag, body: bin.subarray(i, i + len) });
    i += len;
  }
  return out;
}

/** The fingerprints (upper-case hex) of the primary keys in a key block, in order. */
export function fingerprints(bin: Buffer, what: string): string[] {
  const fps: string[] = [];
  for (const p of packets(bin, what)) {
    if (p.tag !== 6) continue;
    if (p.body[0] !== 4)
      throw new OpdError('invalid-document', `${what}: a version ${p.body[0]} OpenPGP key (opd checks v4 keys)`, {
        hint: 'Debian repository keys are v4 keys; give one of those',
      });
    const h = createHash('sha1');
    h.update(Buffer.from([0x99, p.body.length >> 8, p.body.length & 0xff]));
    h.update(p.body);
    fps.push(h.digest('hex').toUpperCase());
  }
  if (!fps.length) throw new OpdError('invalid-document', `${what}: the key block holds no public key`);
  return fps;
}

/** A fingerprint as people write it (spaces, lower case, 0x) → 40 upper-case hex digits. */
export function normalizeFingerprint(fp: string): string {
  return fp.replace(/^0x/i, '').replace(/\s+/g, '').toUpperCase();
}
