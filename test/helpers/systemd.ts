/**
 * The namespaced systemd (scripts/backends/systemd.sh). `up` is idempotent: tests share one
 * instance; CI's .ci/run starts it before and stops it after the suite.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { ROOT } from './opd.js';

export async function ensureSystemd(): Promise<void> {
  const r = await execa('bash', [join(ROOT, 'scripts/backends/systemd.sh'), 'up'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`cannot bring up the namespaced systemd: ${r.stderr || r.stdout}`);
}
