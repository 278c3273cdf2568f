// Shared helpers for benchmark suites: in-process engine runs with counters, timing, sandboxes.
import { execFileSync, spawnSync } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
