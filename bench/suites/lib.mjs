// Shared helpers for benchmark suites: in-process engine runs with counters, timing, sandboxes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dist = (p) => import(join(ROOT, 'dist', p));

export async function engine() {
  const [eng, doc, exec, dbus, pino] = await Promise.all([dist('core/engine.js'), dist('core/document.js'), dist('exec.js'), dist('dbus.js'), import('pino')]);
  const log = pino.pino({ level: 'silent' });
  return {
    prepareLoaded: eng.prepareLoaded, run: eng.run, computePlan: eng.computePlan, parseText: doc.parseText,
    execStats: exec.execStats, resetExecStats: exec.resetExecStats, dbusStats: dbus.dbusStats, resetDbusStats: dbus.resetDbusStats,
    log,
  };
}

export function tmp(prefix = 'opd-bench-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function now() {
  return performance.now();
}

export function ms(x) {
  return Math.round(x * 10) / 10;
}

/** Median of k timed runs of fn (ms). */
export async function median(k, fn) {
  const ts = [];
  for (let i = 0; i < k; i++) {
    const t = now();
    await fn();
    ts.push(now() - t);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

export function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 512 << 20, ...opts });
}

export function ovsUp(vswitchd = false) {
  const dir = tmp('opd-bench-ovs-');
  sh('bash', [join(ROOT, 'scripts/backends/ovs.sh'), 'up', dir, ...(vswitchd ? ['--vswitchd'] : [])]);
  return { dir, db: `unix:${dir}/db.sock`, down: () => sh('bash', [join(ROOT, 'scripts/backends/ovs.sh'), 'down', dir]) };
}
