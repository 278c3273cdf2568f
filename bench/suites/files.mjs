// files: no-op diff of 1,000 files under a sandbox root. In-process (read + diff + plan through
// the engine, counting spawned processes with execStats) and through the CLI (`opd diff`).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPD = join(ROOT, 'bin/opd.js');
const N = Number(process.env.OPD_BENCH_FILES ?? 1000);

export async function run() {
  const { prepareFile: prepareWith, computePlan } = await import('../../dist/core/engine.js');
  const { registry } = await import('../../dist/plugins/index.js');
  const prepareFile = (file) => prepareWith(registry, file);
  const { execStats, resetExecStats } = await import('../../dist/exec.js');
  const work = mkdtempSync(join(tmpdir(), 'opd-bench-files-'));
  const root = join(work, 'root');
  const env = { ...process.env, OPD_ROOT: root, OPD_AUDIT_LOG: join(work, 'audit.jsonl'), OPD_LOG_LEVEL: 'warn' };
  try {
    let text = 'version: 1\nplugins:\n  files:\n    paths:\n      /etc/opd-bench: { type: directory, mode: "0755" }\n';
    for (let i = 0; i < N; i++)
      text += `      /etc/opd-bench/f${i}.conf: { content: "key = ${i}\\nvalue = ${'x'.repeat(64)}\\n", mode: "0640", owner: root, group: root }\n`;
    const file = join(work, 'state.yaml');
    writeFileSync(file, text);
    // setup (not timed): converge once
    const setup = await execa('node', [OPD, 'apply', file], { env, reject: false });
    if (setup.exitCode !== 0) throw new Error(`setup apply failed: ${setup.stderr || setup.stdout}`);

    const settings = { root };
    const log = pino({ level: 'silent' });
    const prep = await prepareFile(file);
    await computePlan(prep, { settings, log }); // warm-up
    resetExecStats();
    const runs = 5;
    const times = [];
    let changes = -1;
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      const c = await computePlan(prep, { settings, log });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      changes = c.plan.changes.length;
    }
    const procs = execStats().spawned / runs;
    times.sort((a, b) => a - b);

    const cli = [];
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      const r = await execa('node', [OPD, 'diff', file], { env, reject: false });
      if (r.exitCode !== 0) throw new Error(`opd diff exited ${r.exitCode}: expected 0 (no changes)`);
      cli.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    cli.sort((a, b) => a - b);
    return {
      name: 'files',
      rows: [
        {
          case: `no-op read+diff+plan, ${N + 1} paths (in-process)`,
          median_ms: Math.round(times[Math.floor(runs / 2)]),
          min_ms: Math.round(times[0]),
          processes: procs,
          changes,
        },
        {
          case: `opd diff, ${N + 1} paths (CLI, whole process)`,
          median_ms: Math.round(cli[1]),
          min_ms: Math.round(cli[0]),
          opd_runs: 1,
          changes: 0,
        },
      ],
      notes:
        'Reads are lstat + one read per named path and one read of /etc/passwd and /etc/group; no processes. The CLI row includes node start-up, loading and validating the document.',
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) run().then((r) => console.table(r.rows));
