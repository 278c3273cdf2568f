// `npm run bench -- drift`: drift-to-repair of `opd daemon` for each plugin with an event source,
// the drift made by the backend's own tool, and the daemon's idle cost with every watch on.
//
// For each plugin (ovs, systemd, files, net, firewall): a daemon (the built CLI, --no-dbus, polling
// and resync off, not under systemd) keeps one resource; the bench drifts it OPD_BENCH_DRIFT_N
// times (default 100) with the backend's tool (ovs-vsctl del-port, StopUnit over D-Bus, a file
// written by hand, ip addr del, nft delete rule) and times, per injection, the tool's return to
// the resource being back (read every 2 ms by the backend's read: an OVSDB wait-until, D-Bus Get,
// the file, `ip -j addr`, `nft -j list table`); the time to notice the repair is part of the
// figure (a few ms: the figure is an upper bound). Once with the daemon's fixed wait of before
// (--debounce 200) and once as it ships (no fixed wait), side by side. Then the idle row: one
// daemon holding all five resources with every watch on, CPU and memory over OPD_BENCH_DRIFT_IDLE_S.
import { execa } from 'execa';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORES } from './lib.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPD = process.env.OPD_BENCH_BIN ?? join(ROOT, 'bin/opd.js');
const N = Number(process.env.OPD_BENCH_DRIFT_N ?? 100);
const IDLE_S = Number(process.env.OPD_BENCH_DRIFT_IDLE_S ?? 30);
const PLUGINS = (process.env.OPD_BENCH_DRIFT_PLUGINS ?? 'ovs,systemd,files,net,firewall').split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const SCTL_ENV = { SYSTEMCTL_FORCE_BUS: '1' };

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

function procStat(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(parts[11]) + Number(parts[12]);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return { ticks, rssKb: rss };
}

async function children(pid) {
  const r = await execa('pgrep', ['-P', String(pid)], { reject: false });
  return String(r.stdout).split('\n').filter(Boolean).map(Number);
}

/** Wait until `fn()` is true, reading every 2 ms; ms from the start. */
async function until(fn, what, ms = 60_000) {
  const t0 = process.hrtime.bigint();
  for (;;) {
    if (await fn()) return Number(process.hrtime.bigint() - t0) / 1e6;
    if (Number(process.hrtime.bigint() - t0) / 1e6 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

// --- the five backends: set-up, the resource's document section, a drift, "is it back?" ----------

async function ovsBackend(dir) {
  const ovsDir = join(dir, 'ovs');
  await execa('bash', [join(ROOT, 'scripts/backends/ovs.sh'), 'up', ovsDir]);
  const db = `unix:${ovsDir}/db.sock`;
  const vsctl = (args) => execa('ovs-vsctl', [`--db=${db}`, '--no-wait', '--timeout=30', ...args], { reject: false });
  return {
    name: 'ovs',
    tool: 'ovs-vsctl del-port',
    env: { OPD_OVS_DB: db },
    section: { ovs: { bridges: { bdr0: { ports: { bdrp0: { type: 'internal' } } } } } },
    drift: () => vsctl(['del-port', 'bdr0', 'bdrp0']),
    // event-driven wait of OVS's own client
    back: () =>
      until(
        async () =>
          (await execa('ovs-vsctl', [`--db=${db}`, '--timeout=60', 'wait-until', 'Port', 'bdrp0'], { reject: false }))
            .exitCode === 0,
        'the port',
      ),
    down: () => execa('bash', [join(ROOT, 'scripts/backends/ovs.sh'), 'down', ovsDir], { reject: false }),
  };
}

async function systemdBackend() {
  const { callRead, closeBuses } = await import(join(ROOT, 'dist/dbus.js'));
  const call = callRead;
  const sctl = (args) => execa('systemctl', args, { env: SCTL_ENV, reject: false });
  const unit = `opd-bench-drift-${process.pid}.service`;
  const unitPath = `/run/systemd/system/${unit}`;
  writeFileSync(unitPath, '[Unit]\nDescription=opd drift bench target\n[Service]\nExecStart=/bin/sleep infinity\n');
  await execa('systemctl', ['daemon-reload'], { env: SCTL_ENV });
  const mgr = {
    destination: 'org.freedesktop.systemd1',
    path: '/org/freedesktop/systemd1',
    interface: 'org.freedesktop.systemd1.Manager',
  };
  await sctl(['start', unit]);
  const [path] = await call({}, { ...mgr, member: 'GetUnit', signature: 's', body: [unit] });
  const state = async () =>
    (
      await call(
        {},
        {
          destination: 'org.freedesktop.systemd1',
          path,
          interface: 'org.freedesktop.DBus.Properties',
          member: 'Get',
          signature: 'ss',
          body: ['org.freedesktop.systemd1.Unit', 'ActiveState'],
        },
      )
    )[0].value;
  return {
    name: 'systemd',
    tool: 'systemctl stop',
    env: {},
    section: { systemd: { units: { [unit]: { active_state: 'active' } } } },
    // systemctl waits for the stop job to end
    drift: () => sctl(['stop', unit]),
    back: () => until(async () => (await state()) === 'active', 'the unit'),
    down: async () => {
      await execa('systemctl', ['stop', unit], { env: SCTL_ENV, reject: false });
      rmSync(unitPath, { force: true });
      await execa('systemctl', ['daemon-reload'], { env: SCTL_ENV, reject: false });
      await closeBuses();
    },
  };
}

async function filesBackend(dir) {
  const root = join(dir, 'root');
  await execa('mkdir', ['-p', join(root, 'etc/opd-drift')]);
  const f = join(root, 'etc/opd-drift/app.conf');
  const want = 'listen = 1\n';
  return {
    name: 'files',
    tool: 'a write by hand (writeFileSync)',
    env: { OPD_ROOT: root },
    section: { files: { paths: { '/etc/opd-drift/app.conf': { content: want, mode: '0644' } } } },
    drift: async () => writeFileSync(f, 'listen = 0\n'),
    back: () =>
      until(() => {
        try {
          return readFileSync(f, 'utf8') === want;
        } catch {
          return false;
        }
      }, 'the file'),
    down: async () => {},
  };
}

async function netnsBackend(kind) {
  const ns = `opdbd${kind[0]}${process.pid}`;
  await execa('ip', ['netns', 'add', ns]);
  const ip = (args) => execa('ip', ['-n', ns, ...args], { reject: false });
  await ip(['link', 'set', 'lo', 'up']);
  const down = async () => {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  };
  if (kind === 'net')
    return {
      name: 'net',
      tool: 'ip addr del',
      env: { OPD_NETNS: ns },
      section: { net: { interfaces: { bdn0: { kind: 'bridge', up: true, addresses: ['10.77.0.1/24'] } } } },
      drift: () => ip(['addr', 'del', '10.77.0.1/24', 'dev', 'bdn0']),
      back: () =>
        until(
          async () => (await ip(['-j', 'addr', 'show', 'dev', 'bdn0'])).stdout.includes('10.77.0.1'),
          'the address',
        ),
      down,
    };
  const nft = (args) => execa('ip', ['netns', 'exec', ns, 'nft', ...args], { reject: false });
  return {
    name: 'firewall',
    tool: 'nft flush chain',
    env: { OPD_NETNS: ns },
    section: {
      firewall: {
        tables: {
          opdbd: {
            chains: {
              input: {
                type: 'filter',
                hook: 'input',
                priority: 'filter',
                policy: 'accept',
                rules: [{ proto: 'tcp', dport: 22, action: 'accept' }],
              },
            },
          },
        },
      },
    },
    drift: () => nft(['flush', 'chain', 'inet', 'opdbd', 'input']),
    back: () =>
      until(
        async () => (await nft(['-j', 'list', 'chain', 'inet', 'opdbd', 'input'])).stdout.includes('"rule"'),
        'the rule',
      ),
    down,
  };
}

const BACKENDS = {
  ovs: ovsBackend,
  systemd: systemdBackend,
  files: filesBackend,
  net: () => netnsBackend('net'),
  firewall: () => netnsBackend('firewall'),
};

/** A daemon keeping `sections` (polling and resync off), started and ready. */
async function startDaemon(dir, sections, env, extra = []) {
  const state = join(dir, `state-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(state, JSON.stringify({ version: 1, plugins: Object.assign({}, ...sections) }));
  const audit = join(dir, `audit-${Math.random().toString(36).slice(2)}.jsonl`);
  const child = execa(
    process.execPath,
    [OPD, 'daemon', '--state', state, '--no-dbus', '--log-format', 'json', '--poll', '0', '--resync', '0', ...extra],
    { reject: false, env: { ...env, OPD_AUDIT_LOG: audit, OPD_LOG_LEVEL: 'info' }, stdout: 'ignore', stderr: 'pipe' },
  );
  let ready = false;
  let log = '';
  child.stderr.on('data', (b) => {
    log += String(b);
    if (String(b).includes('"msg":"ready"')) ready = true;
  });
  for (let i = 0; i < 600 && !ready && child.exitCode === null; i++) await sleep(100);
  if (!ready) throw new Error(`the daemon did not become ready:\n${log.slice(-2000)}`);
  const lines = () => (existsSync(audit) ? readFileSync(audit, 'utf8').split('\n') : []);
  return {
    child,
    runEnds: () => lines().filter((l) => l.includes('"type":"run.end"')).length,
    drifts: () => lines().filter((l) => l.includes('"type":"drift"')).length,
    stop: async () => {
      child.kill('SIGTERM');
      return (await child).exitCode;
    },
  };
}

async function measure(b, dir, mode) {
  const d = await startDaemon(dir, [b.section], b.env, mode === 'before' ? ['--debounce', '200'] : []);
  const lat = [];
  const load0 = loadavg()[0];
  try {
    for (let i = 0; i < N; i++) {
      const ends = d.runEnds();
      await b.drift();
      lat.push(await b.back());
      // independent injections: the repairing run has ended and the follow-up run (its own
      // change seen by its watch) has settled
      for (let k = 0; k < 500 && d.runEnds() <= ends; k++) await sleep(5);
      await sleep(50);
    }
  } finally {
    await d.stop();
  }
  const load1 = loadavg()[0];
  return {
    plugin: b.name,
    mode: mode === 'before' ? 'before: 200 ms fixed wait' : 'after: no fixed wait',
    drift_by: b.tool,
    injections: N,
    p50_ms: +pct(lat, 50).toFixed(1),
    p99_ms: +pct(lat, 99).toFixed(1),
    max_ms: +Math.max(...lat).toFixed(1),
    drift_entries: d.drifts(),
    target_p99_ms: 50,
    met: mode === 'before' ? '' : pct(lat, 99) <= 50 ? 'yes' : 'no',
    load_before: +load0.toFixed(2),
    load_after: +load1.toFixed(2),
    valid: load0 < CORES && load1 < CORES ? 'yes' : 'no',
  };
}

export async function run({ progress = () => {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'opd-bench-drift-'));
  const rows = [];
  const backends = [];
  try {
    for (const name of PLUGINS) {
      const b = await BACKENDS[name](dir);
      backends.push(b);
      for (const mode of ['before', 'after']) {
        rows.push(await measure(b, dir, mode));
        const r = rows.at(-1);
        progress(`${name} ${mode}: p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms (load ${r.load_after})`);
      }
    }
    // idle: one daemon with every resource and every watch on
    const d = await startDaemon(
      dir,
      backends.map((b) => b.section),
      Object.assign({}, ...backends.map((b) => b.env)),
    );
    await sleep(3000);
    const kids = await children(d.child.pid);
    const a = procStat(d.child.pid);
    const ka = kids.map(procStat);
    const t0 = Date.now();
    await sleep(IDLE_S * 1000);
    const z = procStat(d.child.pid);
    const kz = kids.map(procStat);
    const secs = (Date.now() - t0) / 1000;
    const cpu = (100 * (z.ticks - a.ticks + kz.reduce((s, x, i) => s + x.ticks - ka[i].ticks, 0))) / 100 / secs;
    rows.push({
      plugin: backends.map((b) => b.name).join('+'),
      mode: `idle ${IDLE_S} s, every watch on`,
      daemon_rss_mb: +(z.rssKb / 1024).toFixed(1),
      watchers: kids.length,
      watchers_rss_mb: +(kz.reduce((s, x) => s + x.rssKb, 0) / 1024).toFixed(1),
      cpu_pct_of_one_core: +cpu.toFixed(2),
      target_cpu_pct: 0.5,
      met: cpu < 0.5 ? 'yes' : 'no',
      load_after: +loadavg()[0].toFixed(2),
      valid: loadavg()[0] < CORES ? 'yes' : 'no',
    });
    await d.stop();
  } finally {
    for (const b of backends) await b.down();
  }
  return {
    name: 'drift',
    rows,
    notes: [
      `drift-to-repair = the drifting tool returned → the resource read back as the document says (read every 2 ms, so up to ~2 ms of it is the bench's own polling); ${N} injections per row; the daemon runs outside systemd with --no-dbus, --poll 0, --resync 0: only its event sources find the drift`,
      'before = the same build with --debounce 200 (the fixed wait the daemon had), after = as shipped (the first event starts a run at once; events during a run make the next one)',
      `rows are valid only when the 1-minute load average before and after was below the number of cores (${CORES})`,
    ].join('\n'),
  };
}
