// Core: start-up (opd --version, opd validate), time before the first backend call, audit
// appends per second (fsync'd), and audit verify throughput over a 100 MB log.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ms, tmp } from './lib.mjs';

/** CPU time (user + system, ms) of the children this process has waited for (/proc, 10 ms ticks). */
function childCpuMs() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10; // cutime, cstime (fields 16 and 17)
}

function spawnTimed(cmd, args, env = {}) {
  const c = childCpuMs();
  const t = performance.now();
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { ms: performance.now() - t, cpu: childCpuMs() - c, code: r.status };
}

function wall(args, env = {}) {
  return spawnTimed('node', [join(ROOT, 'bin/opd.js'), ...args], env);
}

/** Medians of k spawns: wall time and CPU time. */
function both(k, f) {
  const xs = Array.from({ length: k }, f);
  const m = (key) => xs.map((x) => x[key]).sort((a, b) => a - b)[Math.floor(k / 2)];
  return { ms: m('ms'), cpu: m('cpu') };
}

export async function run({ progress = () => {} } = {}) {
  const { AuditLog } = await import(join(ROOT, 'dist/audit/chain.js'));
  const { verifyLog } = await import(join(ROOT, 'dist/audit/verify.js'));
  const rows = [];
  // wall time and CPU time (user + system) of each spawn; the ratio to `node -e 0` is the figure
  // that holds on a busy machine (wall time there is mostly waiting for a core)
  const node = both(9, () => spawnTimed('node', ['-e', '0']));
  const startup = (metric, r) => [
    { metric, value: ms(r.ms), unit: 'ms', x_node: Math.round((r.ms / node.ms) * 100) / 100 },
    { metric: `${metric} (CPU)`, value: ms(r.cpu), unit: 'ms cpu', x_node: Math.round((r.cpu / node.cpu) * 100) / 100 },
  ];
  rows.push(...startup('node -e 0 (Node start, floor)', node));
  rows.push(
    ...startup(
      'opd --version',
      both(9, () => wall(['--version'])),
    ),
  );
  rows.push(
    ...startup(
      'opd validate examples/demo.yaml',
      both(9, () => wall(['validate', join(ROOT, 'examples/demo.yaml')])),
    ),
  );
  // a diff against an unreachable OVS socket ends at its first backend call
  rows.push(
    ...startup(
      'opd diff until the first backend call',
      both(9, () =>
        wall(['diff', join(ROOT, 'examples/demo.yaml')], { OPD_OVS_DB: 'unix:/nonexistent/opd-bench.sock' }),
      ),
    ),
  );
  progress('start-up measured');

  const dir = tmp();
  const log = AuditLog.open(join(dir, 'audit.jsonl'));
  const entry = {
    address: 'ovs/bridges/br0/ports/p1',
    action: 'update',
    summary: 'tag 10 → 20',
    ops: [{ op: 'replace', path: '/ports/p1/tag', value: 20 }],
    before: 'a'.repeat(64),
    after: 'b'.repeat(64),
    result: 'ok',
    attempts: 1,
  };
  const n1 = 500;
  let t = performance.now();
  for (let i = 0; i < n1; i++) log.append('bench', 'change', entry);
  const single = n1 / ((performance.now() - t) / 1000);
  rows.push({ metric: 'audit appends, one fsync each', value: Math.round(single), unit: 'entries/s' });
  t = performance.now();
  const batch = Array.from({ length: 1000 }, () => ({ run: 'bench', type: 'change', fields: entry }));
  for (let i = 0; i < 20; i++) log.appendMany(batch);
  rows.push({
    metric: 'audit appends, one fsync per wave of 1000',
    value: Math.round(20000 / ((performance.now() - t) / 1000)),
    unit: 'entries/s',
  });
  progress('appends measured; writing a 100 MB log');
  const target = Number(process.env.OPD_BENCH_AUDIT_MB ?? 100) * 1024 * 1024;
  const big = Array.from({ length: 5000 }, () => ({ run: 'bench', type: 'change', fields: entry }));
  while (statSync(join(dir, 'audit.jsonl')).size < target) log.appendMany(big);
  log.close();
  const size = statSync(join(dir, 'audit.jsonl')).size;
  t = performance.now();
  const v = verifyLog(join(dir, 'audit.jsonl'));
  const secs = (performance.now() - t) / 1000;
  if (!v.ok) throw new Error('verify failed on the bench log');
  rows.push({
    metric: `audit verify over ${Math.round(size / 2 ** 20)} MB (${v.entries} entries)`,
    value: Math.round(size / 2 ** 20 / secs),
    unit: 'MB/s',
  });
  return {
    rows,
    notes:
      'medians of 9 spawns for start-up (wall and CPU time = user + system of the child, 10 ms ticks); x_node = ratio to node -e 0; fsync on the bench temp dir filesystem',
  };
}
