/** The key that hashes secrets in the audit trail and the daemon's records. */
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ensureDir } from '../core/fsutil.js';
import { sha256 } from '../core/canonical.js';
import { readKey } from './chain.js';

/** The key for hashing secrets: the audit key when configured, else a random one kept beside the log. */
export function secretKey(auditLog: string, keyFile?: string): Buffer {
  const k = readKey(keyFile);
  if (k) return k;
  const p = join(dirname(auditLog), 'secret.key');
  try {
    if (existsSync(p)) return readFileSync(p);
    ensureDir(dirname(p));
    const nk = randomBytes(32);
    writeFileSync(p, nk, { mode: 0o600, flag: 'wx' });
    return nk;
  } catch {
    return Buffer.from(sha256('opd-unkeyed:' + hostname()));
  }
}
