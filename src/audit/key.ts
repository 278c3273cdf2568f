/** The key that hashes secrets in the audit trail and the daemon's records. */
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../core/fsutil.js';
import { readKey } from './chain.js';

/** Where the generated key lives: beside the audit trail, 0600. */
export function secretKeyPath(auditLog: string): string {
  return join(dirname(auditLog), 'secret.key');
}

let ephemeral: Buffer | undefined;

function readGenerated(p: string): Buffer | undefined {
  try {
    const k = readFileSync(p);
    return k.length >= 32 ? k : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The key for hashing secrets: the audit key when configured, else a random key created once
 * (0600, written atomically; the first of two racing writers wins) beside the audit trail and
 * reused by every later run. Where that directory cannot be written (then the trail cannot be
 * either), a random key for this process only: never one that can be guessed.
 */
export function secretKey(auditLog: string, keyFile?: string): Buffer {
  const k = readKey(keyFile);
  if (k) return k;
  const p = secretKeyPath(auditLog);
  try {
    const have = readGenerated(p);
    if (have) return have;
    const nk = randomBytes(32);
    try {
      writeFileAtomic(p, nk, { mode: 0o600, exclusive: true });
      return nk;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return readGenerated(p) ?? nk;
    }
  } catch {
    ephemeral ??= randomBytes(32);
    return ephemeral;
  }
}
