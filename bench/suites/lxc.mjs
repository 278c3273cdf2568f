// No-op diff over 20 real LXC containers (busybox, half of them running) in a private lxcpath:
// processes spawned per read (execStats) and time, in-process and through the CLI.
import { execa } from 'execa';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPD = join(ROOT, 'bin/opd.js');
const N = 20;
const RUNS = 5;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  const { prepareFile: prepareWith, computePlan } = await import('../../dist/core/engine.js');
  const { registry } = await import('../../dist/plugins/index.js');
  const prepareFile = (file) => prepareWith(registry, file);
  const { execStats, resetExecStats } = await import('../../dist/exec.js');
  const { pino } = await import('pino');
  const dir = mkdtempSync(join(tmpdir(), 'opd-bench-lxc-'));
  const lxcPath = join(dir, 'lxc');
  const env = {
    OPD_AUDIT_LOG: join(dir, 'audit.jsonl'),
    OPD_LXC_PATH: lxcPath,
    OPD_LOG_LEVEL: 'warn',
    OPD_LXC_STOP_TIMEOUT: '1',
  };
  const names = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(2, '0')}`);
  const lines = ['version: 1', 'plugins:', '  lxc:', '    containers:'];
  names.forEach((n, i) =>
    lines.push(
      `      ${n}: { template: busybox, memory: 64M, network: [], autostart: ${i % 3 === 0}, running: ${i % 2 === 0}, config: { lxc.tty.max: "2" } }`,
    ),
  );
  const file = join(dir, 'state.yaml');
  writeFileSync(file, lines.join('\n') + '\n');
  const rows = [];
  try {
    const t0 = Date.now();
    const ap = await execa('node', [OPD, 'apply', file], { env, reject: false });
    if (ap.exitCode !== 0) throw new Error(`setup apply failed: ${ap.stdout}\n${ap.stderr}`);
    const setupMs = Date.now() - t0;
    const settings = { lxcPath };
    const log = pino({ level: 'silent' });
    const prep = await prepareFile(file);
    const times = [];
    let stats;
    let changes = 0;
    for (let i = 0; i < RUNS; i++) {
      resetExecStats();
      const t = process.hrtime.bigint();
      const c = await computePlan(prep, { settings, log });
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      stats = execStats();
      changes = c.plan.changes.length;
    }
    rows.push({
      case: 'no-op diff, in process (read + diff + plan)',
      containers: N,
      running: names.filter((_, i) => i % 2 === 0).length,
      changes,
      processes: stats.spawned,
      by_command: Object.entries(stats.byCommand)
        .map(([k, v]) => `${k}×${v}`)
        .join(' '),
      ms_median: Math.round(median(times) * 10) / 10,
      ms_min: Math.round(Math.min(...times) * 10) / 10,
    });
    const cli = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      const r = await execa('node', [OPD, 'diff', file], { env, reject: false });
      cli.push(Date.now() - t);
      if (r.exitCode !== 0) throw new Error(`opd diff was not a no-op: ${r.stdout}`);
    }
    rows.push({
      case: 'no-op `opd diff` (CLI, whole process)',
      containers: N,
      running: N / 2,
      changes: 0,
      processes: 1,
      by_command: 'lxc-ls×1 (inside)',
      ms_median: median(cli),
      ms_min: Math.min(...cli),
    });
    return {
      name: 'lxc',
      rows,
      notes: `setup (opd apply creating ${N} busybox containers, ${N / 2} started): ${setupMs} ms. A read is one lxc-ls plus one config file and one marker read per container (node:fs), independent of the number of fields.`,
    };
  } finally {
    const ls = await execa('lxc-ls', ['-P', lxcPath, '--running', '-1'], { reject: false });
    for (const n of String(ls.stdout).split(/\s+/).filter(Boolean))
      await execa('lxc-stop', ['-P', lxcPath, '-n', n, '-k'], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
}
