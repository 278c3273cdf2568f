import { describe, expect, it } from 'vitest';
import {
  myAccount,
  myGrantDb,
  myIdent,
  myLit,
  mysqlNativeHash,
  mysqlPasswordMatches,
  myUngrantDb,
  parseGrantee,
  pgIdent,
  pgLit,
  pgPasswordMatches,
  scramVerifier,
  scrub,
  splitAccount,
} from '../../../../src/plugins/databases/sql.js';

// verifiers PostgreSQL 15 stored for the password "pencil" (roles vec1 / vec2)
const PG_SCRAM =
  'SCRAM-SHA-256$4096:0DecMKi5nHb3FYhnc76iiQ==$BsTSOk3qznLZZ7hRyd48zc9rWURGupXm1gV3TA9uCFY=:h54MRSzBJ/MUrpVHSt4/JignGtFFvc7/rkl+hyrHwls=';
const PG_MD5 = 'md50c639046bf01f6428a5e65e575b5483e';

describe('password verifiers', () => {
  it('recognises the SCRAM verifier PostgreSQL stored for a password', () => {
    expect(pgPasswordMatches(PG_SCRAM, 'vec1', 'pencil')).toBe(true);
    expect(pgPasswordMatches(PG_SCRAM, 'vec1', 'pencil2')).toBe(false);
  });

  it('recognises an md5 verifier, which is salted with the role name', () => {
    expect(pgPasswordMatches(PG_MD5, 'vec2', 'pencil')).toBe(true);
    expect(pgPasswordMatches(PG_MD5, 'other', 'pencil')).toBe(false);
  });

  it('treats a missing or unknown verifier as not matching', () => {
    expect(pgPasswordMatches(null, 'r', 'x')).toBe(false);
    expect(pgPasswordMatches('plain', 'r', 'plain')).toBe(false);
  });

  it('computes SCRAM verifiers that it then recognises, with a fresh salt each time', () => {
    const a = scramVerifier('s3cret');
    const b = scramVerifier('s3cret');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(a).not.toContain('s3cret');
    expect(pgPasswordMatches(a, 'any', 's3cret')).toBe(true);
    expect(pgPasswordMatches(a, 'any', 's3cret ')).toBe(false);
  });

  it('computes the mysql_native_password hash the server stores', () => {
    expect(mysqlNativeHash('password')).toBe('*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19');
    expect(mysqlPasswordMatches('mysql_native_password', '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19', 'password')).toBe(
      true,
    );
    expect(mysqlPasswordMatches('mysql_native_password', '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19', 'Password')).toBe(
      false,
    );
    expect(mysqlPasswordMatches('unix_socket', '', 'password')).toBe(false);
  });
});

describe('quoting', () => {
  it('quotes PostgreSQL identifiers and literals by doubling quotes', () => {
    expect(pgIdent('a"b')).toBe('"a""b"');
    expect(pgLit("it's")).toBe("'it''s'");
  });

  it('quotes MySQL identifiers and literals by doubling quotes', () => {
    expect(myIdent('a`b')).toBe('`a``b`');
    expect(myLit("it's")).toBe("'it''s'");
    expect(myAccount('rvd_user@localhost')).toBe("'rvd_user'@'localhost'");
  });

  it('refuses to quote a backslash or NUL instead of guessing', () => {
    expect(() => pgLit('a\\b')).toThrow(/backslash/);
    expect(() => myIdent('a\0b')).toThrow(/NUL/);
  });

  it('escapes the wildcards of a database name in a GRANT and reads them back', () => {
    expect(myGrantDb('ravada_db')).toBe('`ravada\\_db`');
    expect(myUngrantDb('ravada\\_db')).toBe('ravada_db');
  });

  it('splits accounts at the last @ and parses information_schema grantees', () => {
    expect(splitAccount('u@10.0.0.%')).toEqual(['u', '10.0.0.%']);
    expect(parseGrantee("'rvd_user'@'localhost'")).toBe('rvd_user@localhost');
    expect(parseGrantee('junk')).toBeUndefined();
  });

  it('scrubs secrets from messages', () => {
    expect(scrub('failed: PASSWORD abc123 here', ['abc123'])).toBe('failed: PASSWORD <secret> here');
  });
});
