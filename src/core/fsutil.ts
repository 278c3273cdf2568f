/** Small filesystem helpers shared by the core and the audit trail. */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * mkdir -p, one level at a time. (Node's recursive mkdirSync spins forever under /proc,
 * which a user can reach with a mistyped --audit-log.)
 */
export function ensureDir(path: string, mode = 0o750): void {
  const abs = resolve(path);
  const chain: string[] = [];
  for (let p = abs; p !== dirname(p); p = dirname(p)) chain.unshift(p);
  for (const p of chain) {
    try {
      mkdirSync(p, { mode });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'EISDIR') throw err;
    }
  }
}
