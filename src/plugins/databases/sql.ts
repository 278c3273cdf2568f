/**
 * Pure helpers of the databases plugin: identifier and literal quoting for PostgreSQL and
 * MariaDB/MySQL, password verifiers (computed here, so that the plaintext never leaves opd:
 * the servers only ever receive a SCRAM verifier or a mysql_native_password hash), and the
 * checks that tell whether a stored verifier matches a desired password without revealing it.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { OpdError } from '../../core/errors.js';

function assertClean(s: string, what: string): void {
  // the schema's patterns already exclude these; quoting must still never depend on it
  if (/[\0\\]/.test(s)) throw new OpdError('bug', `${what} contains a NUL or a backslash and cannot be quoted safely`);
}

/** PostgreSQL identifier: "name" with embedded quotes doubled. */
export function pgIdent(s: string): string {
  assertClean(s, 'identifier');
  return '"' + s.replace(/"/g, '""') + '"';
}

/** PostgreSQL string literal (standard_conforming_strings): 'text' with quotes doubled. */
export function pgLit(s: string): string {
  assertClean(s, 'literal');
  return "'" + s.replace(/'/g, "''") + "'";
}

/** MySQL identifier: `name` with embedded backticks doubled. */
export function myIdent(s: string): string {
  assertClean(s, 'identifier');
  return '`' + s.replace(/`/g, '``') + '`';
}

/** MySQL string literal: quotes doubled (valid with and without NO_BACKSLASH_ESCAPES). */
export function myLit(s: string): string {
  assertClean(s, 'literal');
  return "'" + s.replace(/'/g, "''") + "'";
}

/** A database name in a GRANT: `_` and `%` are wildcards there unless escaped. */
export function myGrantDb(db: string): string {
  assertClean(db, 'identifier');
  return '`' + db.replace(/`/g, '``').replace(/[_%]/g, (m) => '\\' + m) + '`';
}

/** The name of a database as information_schema shows it in a grant (escapes removed). */
export function myUngrantDb(db: string): string {
  return db.replace(/\\([_%\\])/g, '$1');
}

/** `user@host` → [user, host] (the host is after the last @). */
export function splitAccount(account: string): [string, string] {
  const i = account.lastIndexOf('@');
  return i < 0 ? [account, 'localhost'] : [account.slice(0, i), account.slice(i + 1)];
}

/** 'user'@'host' for SQL. */
export function myAccount(account: string): string {
  const [u, h] = splitAccount(account);
  return `${myLit(u)}@${myLit(h)}`;
}

/** information_schema's GRANTEE form 'user'@'host' → user@host. */
export function parseGrantee(g: string): string | undefined {
  const m = /^'(.*)'@'(.*)'$/.exec(g);
  return m ? `${m[1].replace(/''/g, "'")}@${m[2].replace(/''/g, "'")}` : undefined;
}

// ---------------------------------------------------------------------------------------------
// password verifiers

const SCRAM_ITERATIONS = 4096;

function saslPrep(pw: string): string {
  // PostgreSQL applies SASLprep (RFC 4013) to passwords that are valid UTF-8: non-ASCII spaces
  // map to a space, soft hyphens and zero-width characters vanish, then NFKC. ASCII is unchanged.
  if (/^[\x20-\x7e]*$/.test(pw)) return pw;
  return (
    pw
      .replace(/[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g, ' ')
      // eslint-disable-next-line no-misleading-character-class -- each code point is removed on its own
      .replace(/[\u00ad\u034f\u1806\u180b-\u180d\u200c\u200d\u2060\ufe00-\ufe0f\ufeff]/g, '')
      .normalize('NFKC')
  );
}

function scramKeys(pw: string, salt: Buffer, iterations: number): { stored: Buffer; server: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(saslPrep(pw), 'utf8'), salt, iterations, 32, 'sha256');
  const client = createHmac('sha256', salted).update('Client Key').digest();
  return {
    stored: createHash('sha256').update(client).digest(),
    server: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

/** A PostgreSQL SCRAM-SHA-256 verifier (what pg_authid.rolpassword stores) with a fresh salt. */
export function scramVerifier(pw: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const k = scramKeys(pw, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${k.stored.toString('base64')}:${k.server.toString('base64')}`;
}

const same = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

/**
 * Does the stored PostgreSQL verifier (SCRAM-SHA-256 or md5) match this password? Recomputes
 * with the stored salt and iteration count; never reveals either value.
 */
export function pgPasswordMatches(stored: string | null | undefined, role: string, pw: string): boolean {
  if (!stored) return false;
  const m = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(stored);
  if (m) {
    const iterations = Number(m[1]);
    if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 10_000_000) return false;
    const k = scramKeys(pw, Buffer.from(m[2], 'base64'), iterations);
    return same(k.stored, Buffer.from(m[3], 'base64')) && same(k.server, Buffer.from(m[4], 'base64'));
  }
  if (/^md5[0-9a-f]{32}$/.test(stored)) {
    const want =
      'md5' +
      createHash('md5')
        .update(pw + role)
        .digest('hex');
    return same(Buffer.from(want), Buffer.from(stored));
  }
  return false;
}

/** mysql_native_password: '*' + upper(hex(sha1(sha1(pw)))). */
export function mysqlNativeHash(pw: string): string {
  const once = createHash('sha1').update(Buffer.from(pw, 'utf8')).digest();
  return '*' + createHash('sha1').update(once).digest('hex').toUpperCase();
}

/** Does the stored authentication string (mysql_native_password) match this password? */
export function mysqlPasswordMatches(
  plugin: string | null | undefined,
  stored: string | null | undefined,
  pw: string,
): boolean {
  if (!stored || (plugin && plugin !== 'mysql_native_password')) return false;
  return same(Buffer.from(mysqlNativeHash(pw)), Buffer.from(stored.toUpperCase()));
}

/** Replace every occurrence of the given secrets (and strings derived from them) in a text. */
export function scrub(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 3) out = out.split(s).join('<secret>');
  return out;
}

/** What the server stores for a password (`hash` of it); both go to `secrets`, which no message may show. */
export function storedSecret(password: string, hash: (pw: string) => string, secrets: string[]): string {
  const v = hash(password);
  secrets.push(password, v);
  return v;
}
