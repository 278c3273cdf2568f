// Shared helpers for benchmark suites: in-process engine runs with counters, timing, sandboxes.
import { execFileSync, spawnSync } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dist = (p) => import(join(ROOT, 'dist', p));

export async function engine() {
  const [eng, runner, reg, doc, exec, dbus, pino] = await Promise.all([
    dist('core/engine.js'),
    dist('run/index.js'),
    dist('plugins/index.js'),
    dist('core/document.js'),
    dist('exec.js'),
    dist('dbus.js'),
    import('pino'),
  ]);
  const log = pino.pino({ level: 'silent' });
  return {
    prepareLoaded: (loaded, ...rest) => eng.prepareLoaded(reg.registry, loaded, ...rest),
    run: runner.run,
    computePlan: eng.computePlan,
    parseText: doc.parseText,
    execStats: exec.execStats,
    resetExecStats: exec.resetExecStats,
    dbusStats: dbus.dbusStats,
    resetDbusStats: dbus.resetDbusStats,
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
  return {
    dir,
    db: `unix:${dir}/db.sock`,
    down: () => sh('bash', [join(ROOT, 'scripts/backends/ovs.sh'), 'down', dir]),
  };
}

/** Median of k timed spawns of the built CLI (ms) and the last exit code. */
export function cli(args, env = {}, k = 5) {
  const ts = [];
  let code;
  for (let i = 0; i < k; i++) {
    const t = now();
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/opd.js'), ...args], {
      env: { ...process.env, OPD_LOG_LEVEL: 'silent', ...env },
      encoding: 'utf8',
      maxBuffer: 512 << 20,
    });
    ts.push(now() - t);
    code = r.status;
    if (r.status !== 0 && r.status !== 2)
      throw new Error(`opd ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-500)}`);
  }
  ts.sort((a, b) => a - b);
  return { ms: ts[Math.floor(k / 2)], code };
}

/** Median of k timed spawns of a command (ms). */
export function spawnMs(cmd, args, k = 5) {
  const ts = [];
  for (let i = 0; i < k; i++) {
    const t = now();
    const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 512 << 20 });
    ts.push(now() - t);
    if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${String(r.stderr).slice(-500)}`);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(k / 2)];
}

/**
 * The floor of a write: one OVSDB `transact` request sent as raw JSON over the socket and its
 * answer awaited (no client library, no Node start-up). ovsdb-client cannot send it: a
 * 10,000-port transaction is larger than one command-line argument may be (128 KiB).
 */
export function rawTransact(sockPath, params) {
  const text = JSON.stringify({ method: 'transact', params, id: 1 });
  return new Promise((resolve, reject) => {
    const s = netConnect({ path: sockPath });
    const chunks = [];
    s.on('connect', () => s.write(text));
    s.on('data', (b) => {
      chunks.push(b);
      if (b[b.length - 1] !== 0x7d) return; // '}'
      try {
        const msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        s.destroy();
        const bad = (msg.result ?? []).find((r) => r && r.error);
        if (msg.error || bad) reject(new Error(`transact failed: ${JSON.stringify(msg.error ?? bad)}`));
        else resolve(msg.result);
      } catch {
        /* not the whole answer yet */
      }
    });
    s.on('error', reject);
  });
}

/**
 * The rows opd creates for `ports` ports spread over bridges (names as the documents name them):
 * bridges and their local ports, internal interfaces, tags, ownership marks. One transaction.
 */
export function ovsInsertTxn(bridges) {
  const ops = [];
  const brs = [];
  let k = 0;
  for (const [br, spec] of Object.entries(bridges)) {
    const ports = spec.ports ?? {};
    const portRefs = [];
    const local = (name, extra = {}) => {
      const i = `i${k}`,
        p = `p${k++}`;
      ops.push({ op: 'insert', table: 'Interface', row: { name, type: 'internal' }, 'uuid-name': i });
      ops.push({ op: 'insert', table: 'Port', row: { name, interfaces: ['named-uuid', i], ...extra }, 'uuid-name': p });
      portRefs.push(['named-uuid', p]);
    };
    local(br);
    for (const [name, spec] of Object.entries(ports))
      local(name, { tag: spec.tag, external_ids: ['map', [['opd_managed', 'true']]] });
    const b = `b${k++}`;
    ops.push({
      op: 'insert',
      table: 'Bridge',
      row: { name: br, ports: ['set', portRefs], external_ids: ['map', [['opd_managed', 'true']]] },
      'uuid-name': b,
    });
    brs.push(['named-uuid', b]);
  }
  ops.push({ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ['set', brs]]] });
  return ['Open_vSwitch', ...ops];
}

// ---------------------------------------------------------------------------------------------
// Whole-command figures: what a user times. Every acceptance row is a whole process timed from
// outside (spawn to exit, Node start-up and set-up included), paired with its floor, also a
// whole process: A B A B …, the ratio taken pair by pair (drift of the machine's speed hits both
// sides of a pair alike), medians of at least 5 pairs. The load average is read before and after:
// a row measured while it was at or above the number of cores is marked invalid.

/** The number of cores a row's load average is compared with. */
export const CORES = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;

/** The 1-minute load average. */
export function load1() {
  return Math.round(loadavg()[0] * 100) / 100;
}

/** The opd command a user runs: bin/opd.js of this checkout, or OPD_BENCH_BIN (another build, for before/after). */
export function opdCommand(...args) {
  return [process.execPath, [process.env.OPD_BENCH_BIN ?? join(ROOT, 'bin/opd.js'), ...args]];
}

/** CPU time (user + system, ms) of the children this process has waited for (/proc, clock ticks). */
export function childCpuMs() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10; // cutime, cstime (fields 16 and 17), USER_HZ 100
}

function timedSpawn(side) {
  side.setup?.();
  const [cmd, args] = side.command;
  const c0 = childCpuMs();
  const t0 = performance.now();
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...(side.env ?? {}) },
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const wall = performance.now() - t0;
  const cpu = childCpuMs() - c0;
  try {
    const ok = side.ok ?? ((x) => x.status === 0);
    if (r.error || !ok(r))
      throw new Error(
        `${[cmd, ...args].join(' ').slice(0, 300)} exited ${r.status ?? r.error}: ${String(r.stdout + r.stderr).slice(-800)}`,
      );
  } finally {
    side.teardown?.();
  }
  return { wall, cpu };
}

const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r2 = (x) => Math.round(x * 100) / 100;

/**
 * One whole-command row: `a` (opd) and `b` (its floor), each { command: [cmd, args], env?,
 * setup?(), teardown?() (around each run, not timed), ok?(spawnResult) (default: exit 0) },
 * started in turn A B A B … after `warmup` untimed runs of each. Figures are medians over the
 * pairs; `ratio` is the median of the pairs' ratios. `target`: { ratio?: max A/B, ms?: max A,
 * speedup?: min B/A } (the acceptance bound: `meets` says yes/no, or "invalid" when the load was
 * too high).
 */
export function paired(name, a, b, { pairs = Number(process.env.OPD_BENCH_PAIRS ?? 7), warmup = 1, target } = {}) {
  const loadBefore = load1();
  for (let i = 0; i < warmup; i++) {
    timedSpawn(a);
    timedSpawn(b);
  }
  const A = [],
    B = [];
  for (let i = 0; i < Math.max(5, pairs); i++) {
    A.push(timedSpawn(a));
    B.push(timedSpawn(b));
  }
  const loadAfter = load1();
  const valid = loadBefore < CORES && loadAfter < CORES;
  const ratio = med(A.map((x, i) => x.wall / B[i].wall));
  const aMs = med(A.map((x) => x.wall));
  let meets = '';
  if (target) {
    const ok =
      (target.ratio === undefined || ratio <= target.ratio) &&
      (target.ms === undefined || aMs <= target.ms) &&
      (target.speedup === undefined || 1 / ratio >= target.speedup);
    meets = valid ? (ok ? 'yes' : 'no') : `invalid (${ok ? 'yes' : 'no'} under load)`;
  }
  return {
    row: name,
    opd_ms: ms(aMs),
    floor_ms: ms(med(B.map((x) => x.wall))),
    ratio: r2(ratio),
    ...(target?.speedup !== undefined ? { speedup: Math.round((1 / ratio) * 10) / 10 } : {}),
    ...(target
      ? {
          target: [
            target.ratio !== undefined ? `<= ${target.ratio}x` : '',
            target.ms !== undefined ? `<= ${target.ms} ms` : '',
            target.speedup !== undefined ? `opd >= ${target.speedup}x faster` : '',
          ]
            .filter(Boolean)
            .join(', '),
          meets,
        }
      : {}),
    opd_min_max_ms: `${ms(Math.min(...A.map((x) => x.wall)))}-${ms(Math.max(...A.map((x) => x.wall)))}`,
    floor_min_max_ms: `${ms(Math.min(...B.map((x) => x.wall)))}-${ms(Math.max(...B.map((x) => x.wall)))}`,
    opd_cpu_ms: med(A.map((x) => x.cpu)),
    floor_cpu_ms: med(B.map((x) => x.cpu)),
    cpu_ratio: r2(med(A.map((x, i) => x.cpu / Math.max(B[i].cpu, 10)))),
    pairs: A.length,
    load_before: loadBefore,
    load_after: loadAfter,
    cores: CORES,
    valid: valid ? 'yes' : `no (load >= ${CORES} cores)`,
  };
}
