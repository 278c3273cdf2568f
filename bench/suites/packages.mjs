/**
 * packages: a no-op `diff` for 50 installed packages (taken from this machine's dpkg database),
 * through PackageKit and through apt/dpkg. In-process engine runs (median of 5) with the
 * processes spawned and D-Bus calls made, plus the wall time of the CLI (`opd diff`, node start
 * included). Nothing is changed on the host.
 */
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parseText } from '../../dist/core/document.js';
import { prepareLoaded, computePlan } from '../../dist/core/engine.js';
import { registry } from '../../dist/plugins/index.js';
import { execStats, resetExecStats } from '../../dist/exec.js';
import { dbusStats, resetDbusStats, closeBuses } from '../../dist/dbus.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const N = 50;
const REPEAT = 5;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  const q = await execa('dpkg-query', ['-W', '-f=${Package}\t${db:Status-Status}\n']);
  const names = q.stdout
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([n, s]) => s === 'installed' && /^[a-z0-9][a-z0-9+.-]{0,127}$/.test(n))
    .map(([n]) => n)
    .sort()
    .slice(0, N);
  if (names.length < N) throw new Error(`only ${names.length} installed packages found`);
  const text = `version: 1\nplugins:\n  packages:\n    installed:\n${names.map((n) => `      ${n}: {}`).join('\n')}\n`;
  const dir = mkdtempSync(join(tmpdir(), 'opd-bench-pkgs-'));
  const file = join(dir, 'state.yaml');
  writeFileSync(file, text);
  const log = pino({ level: 'silent' });
  const rows = [];
  for (const backend of ['packagekit', 'apt']) {
    const settings = { packagesBackend: backend };
    const prep = await prepareLoaded(registry, parseText(text, file));
    await computePlan(prep, { settings, log }); // warm: bus connection, subscription, PackageKit activation
    const times = [];
    let procs = 0;
    let calls = 0;
    let changes = -1;
    for (let i = 0; i < REPEAT; i++) {
      resetExecStats();
      resetDbusStats();
      const t0 = performance.now();
      const c = await computePlan(prep, { settings, log });
      times.push(performance.now() - t0);
      procs = execStats().spawned;
      calls = dbusStats().calls;
      changes = c.plan.changes.length;
    }
    const cli = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await execa('node', [join(ROOT, 'bin/opd.js'), 'diff', file], {
        reject: false,
        env: { OPD_PACKAGES_BACKEND: backend, OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_LOG_LEVEL: 'silent' },
      });
      cli.push(performance.now() - t0);
      if (r.exitCode !== 0) throw new Error(`opd diff through ${backend} exited ${r.exitCode}: ${r.stdout}${r.stderr}`);
    }
    rows.push({
      backend,
      packages: names.length,
      changes,
      read_plan_ms: Math.round(median(times)),
      processes: procs,
      dbus_calls: calls,
      cli_diff_ms: Math.round(median(cli)),
    });
  }
  await closeBuses();
  return {
    name: 'packages',
    rows,
    notes: `no-op diff of ${N} installed packages; read_plan_ms = in-process read+diff+plan (median of ${REPEAT}, after one warm-up run); processes/dbus_calls per read; cli_diff_ms = \`opd diff\` wall time incl. node start (median of 3). PackageKit: CreateTransaction + Resolve per read (one shared signal subscription per process); apt: one dpkg-query.`,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await run();
  console.table(r.rows);
  console.log(r.notes);
}
