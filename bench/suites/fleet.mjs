// `npm run bench -- fleet`: N `opd daemon --etcd` processes (10, 25, 50; each with its own --root
// sandbox and audit trail, the files plugin) against the private 3-member etcd cluster of
// scripts/backends/etcd.sh (brought up here when it is not running, and taken down again).
// Per N: a fragment for all of them is put with the CLI (`opd fleet put`, timed from its spawn);
// each host's time to report `converged` with the new fragment is taken from an etcd watch on
// the status keys. Then idle CPU and RSS of the daemons (and of the etcd members) over a window.
import { execa } from 'execa';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPD = join(ROOT, 'bin/opd.js');
const SCRIPT = join(ROOT, 'scripts/backends/etcd.sh');
const SIZES = (process.env.OPD_BENCH_FLEET_SIZES ?? '10,25,50').split(',').map(Number);
const ROUNDS = Number(process.env.OPD_BENCH_FLEET_ROUNDS ?? 3);
const IDLE_S = Number(process.env.OPD_BENCH_FLEET_IDLE_S ?? 15);
const TICK = 100; // clock ticks per second (getconf CLK_TCK on Linux/x86)

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function procStat(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
    return { ticks: Number(parts[11]) + Number(parts[12]), rssKb: rss };
  } catch {
    return { ticks: 0, rssKb: 0 };
  }
}

async function until(fn, what, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function statuses(c) {
  const all = await c.getAll().prefix('/opd/hosts/').strings();
  const out = new Map();
  for (const [k, v] of Object.entries(all)) {
    const [host, leaf] = k.slice('/opd/hosts/'.length).split('/');
    const o = out.get(host) ?? {};
    if (leaf === 'status') o.status = JSON.parse(v);
    if (leaf === 'alive') o.alive = true;
    out.set(host, o);
  }
  return out;
}

async function scenario(n, endpoints, progress) {
  const c = new Etcd3({ hosts: endpoints.split(',') });
  await c.delete().prefix('/opd/');
  const dir = mkdtempSync(join(tmpdir(), `opd-bench-fleet-${n}-`));
  const procs = [];
  try {
    for (let i = 0; i < n; i++) {
      const host = `bench${n}-${String(i).padStart(3, '0')}`;
      const d = join(dir, host);
      procs.push(
        execa(
          process.execPath,
          [
            OPD,
            'daemon',
            '--etcd',
            endpoints,
            '--host',
            host,
            '--label',
            'bench=yes',
            '--root',
            d,
            '--audit-log',
            join(d, 'audit.jsonl'),
            '--no-dbus',
            '--lease-ttl',
            '10',
          ],
          {
            reject: false,
            stdio: 'ignore',
            env: { OPD_LOG_LEVEL: 'warn', OPD_AUDIT_KEY: '' },
          },
        ),
      );
    }
    const t0 = Date.now();
    await until(
      async () => [...(await statuses(c)).values()].filter((s) => s.alive && s.status?.converged).length === n,
      `${n} daemons up`,
      600_000,
    );
    const startS = (Date.now() - t0) / 1000;
    progress(`${n} daemons up and converged (empty document) in ${startS.toFixed(1)} s`);
    const lat = [];
    const cli = [];
    for (let r = 0; r < ROUNDS; r++) {
      const id = `change-${r}`;
      const f = join(dir, `${id}.yaml`);
      writeFileSync(
        f,
        `version: 1\nplugins:\n  files:\n    /etc/opd-bench-${r}: { content: "round ${r}\\n", mode: "0644" }\n`,
      );
      const seen = new Map();
      const w = await c.watch().prefix('/opd/hosts/').create();
      const start = Date.now();
      w.on('put', (kv) => {
        const k = kv.key.toString();
        if (!k.endsWith('/status')) return;
        const st = JSON.parse(kv.value.toString());
        if (st.converged && st.fragments?.includes(id) && !seen.has(st.host)) seen.set(st.host, Date.now() - start);
      });
      const put = await execa(
        process.execPath,
        [OPD, 'fleet', 'put', f, '--selector', 'bench=yes', '--etcd', endpoints],
        { reject: false },
      );
      if (put.exitCode !== 0) throw new Error(`fleet put failed: ${put.stderr}`);
      cli.push(Date.now() - start);
      await until(() => seen.size === n, `${n} hosts converged on ${id}`, 300_000);
      await w.cancel();
      lat.push(...seen.values());
      progress(
        `n=${n} round ${r + 1}/${ROUNDS}: all converged after ${Math.max(...seen.values())} ms (put CLI ${cli[cli.length - 1]} ms)`,
      );
    }
    // idle: daemons and etcd members, after the last change settled
    const pids = procs.map((p) => p.pid);
    const etcdPids = [1, 2, 3].map((i) =>
      Number(readFileSync(join(process.env.OPD_ETCD_DIR ?? '/var/tmp/opd-etcd', `m${i}.pid`), 'utf8')),
    );
    await new Promise((r) => setTimeout(r, 2_000));
    const a = pids.map(procStat);
    const ea = etcdPids.map(procStat);
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const b = pids.map(procStat);
    const eb = etcdPids.map(procStat);
    const cpu = b.map((x, i) => ((x.ticks - a[i].ticks) / TICK / IDLE_S) * 100);
    const ecpu = (eb.reduce((s, x, i) => s + (x.ticks - ea[i].ticks), 0) / TICK / IDLE_S) * 100;
    const rss = b.map((x) => x.rssKb / 1024);
    return {
      hosts: n,
      rounds: ROUNDS,
      start_all_s: Math.round(startS * 10) / 10,
      put_cli_ms_p50: Math.round(pct(cli, 50)),
      converged_p50_ms: Math.round(pct(lat, 50)),
      converged_p99_ms: Math.round(pct(lat, 99)),
      converged_max_ms: Math.round(Math.max(...lat)),
      idle_cpu_pct_per_daemon: Math.round((cpu.reduce((s, x) => s + x, 0) / n) * 100) / 100,
      idle_cpu_pct_all_daemons: Math.round(cpu.reduce((s, x) => s + x, 0) * 10) / 10,
      rss_mib_per_daemon: Math.round((rss.reduce((s, x) => s + x, 0) / n) * 10) / 10,
      etcd_idle_cpu_pct_3_members: Math.round(ecpu * 10) / 10,
    };
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs);
    await c
      .delete()
      .prefix('/opd/')
      .catch(() => undefined);
    c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run({ progress = () => {} } = {}) {
  let started = false;
  const st = await execa('bash', [SCRIPT, 'status'], { reject: false });
  if (st.exitCode !== 0) {
    await execa('bash', [SCRIPT, 'up']);
    started = true;
  }
  const endpoints = String((await execa('bash', [SCRIPT, 'endpoints'])).stdout).trim();
  const rows = [];
  try {
    for (const n of SIZES) rows.push(await scenario(n, endpoints, progress));
  } finally {
    if (started) await execa('bash', [SCRIPT, 'down'], { reject: false });
  }
  return {
    name: 'fleet',
    rows,
    notes: [
      `converged_* = per host, from the spawn of \`opd fleet put\` (CLI start, validation, store, per-host copies) until that host's status key says converged with the new fragment (seen by an etcd watch); ${ROUNDS} rounds per size, all hosts pooled`,
      `idle over ${IDLE_S} s after the last change: daemons (default --poll 30, --resync 300, --lease-ttl 10 → keepalive every ~3 s) and the 3 etcd members; CPU from /proc utime+stime`,
      'all daemons and etcd share this 2-core machine (and other sessions), so latency includes CPU contention of N Node processes reconciling at once',
    ].join('\n'),
  };
}
