/**
 * The private 3-member etcd cluster of scripts/backends/etcd.sh (brought up by scripts/test-all.sh)
 * and fleet daemons, each in a --root sandbox of its own with its own audit trail.
 */
import { until as waitUntil } from './wait.js';
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { ROOT, OPD } from './opd.js';

const SCRIPT = join(ROOT, 'scripts/backends/etcd.sh');

export async function etcdScript(args: string[]): Promise<string> {
  const r = await execa('bash', [SCRIPT, ...args], { reject: false, timeout: 120_000 });
  if (r.exitCode !== 0) throw new Error(`etcd.sh ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return String(r.stdout).trim();
}

/** The cluster's endpoints; throws (the test fails) when the cluster is not up and healthy. */
export async function etcdCluster(): Promise<string> {
  const r = await execa('bash', [SCRIPT, 'status'], { reject: false, timeout: 60_000 });
  if (r.exitCode !== 0)
    throw new Error(
      `the etcd cluster is not healthy (bring it up with scripts/backends/etcd.sh up):\n${r.stdout}\n${r.stderr}`,
    );
  return etcdScript(['endpoints']);
}

export function etcdClient(endpoints: string, auth?: { username: string; password: string }): Etcd3 {
  return new Etcd3({
    hosts: endpoints.split(','),
    ...(auth ? { auth } : {}),
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 5_000 }),
  });
}

export interface FleetDaemon {
  host: string;
  dir: string;
  audit: string;
  proc: ResultPromise;
  output(): string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

export function startFleetDaemon(opts: {
  endpoints: string;
  host: string;
  dir: string;
  labels?: string[];
  args?: string[];
  env?: Record<string, string>;
}): FleetDaemon {
  mkdirSync(opts.dir, { recursive: true });
  const audit = join(opts.dir, 'var/lib/opd/audit.jsonl');
  const args = [
    OPD,
    'daemon',
    '--etcd',
    opts.endpoints,
    '--host',
    opts.host,
    ...(opts.labels ?? []).flatMap((l) => ['--label', l]),
    '--root',
    opts.dir,
    '--audit-log',
    audit,
    '--no-dbus',
    '--poll',
    '1',
    '--debounce',
    '50',
    '--backoff',
    '1',
    '--lease-ttl',
    '3',
    ...(opts.args ?? []),
  ];
  let out = '';
  const proc = execa(process.execPath, args, {
    reject: false,
    all: true, // no HMAC key (the suite pins one): the witness must catch a cut trail without it
    env: { OPD_LOG_LEVEL: 'info', OPD_AUDIT_KEY: '', ...opts.env },
    buffer: false,
  });
  proc.all?.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
  });
  return {
    host: opts.host,
    dir: opts.dir,
    audit,
    proc,
    output: () => out,
    async kill(signal) {
      if (proc.exitCode === null && proc.pid) process.kill(proc.pid, signal);
      await proc;
    },
  };
}

/** Wait until fn() returns a truthy value, or fail naming what was awaited (fleet waits are long). */
export function until<T>(fn: () => Promise<T> | T, what: string, ms = 60_000): Promise<T> {
  return waitUntil(fn, what, ms, 100);
}

/**
 * A 3-member etcd cluster of one test file's own (scripts/backends/etcd.sh with private ports,
 * data dir and token): for tests that change what the shared cluster's other users rely on
 * (etcd auth, every key under /opd/) and may run beside them. `down` stops it by its pidfiles
 * and removes its data.
 */
export async function privateEtcdCluster(
  name: string,
  base: number,
): Promise<{ endpoints: string; sh(args: string[]): Promise<void>; down(): Promise<void> }> {
  const id = Math.random().toString(36).slice(2, 6);
  const env = {
    OPD_ETCD_DIR: `/var/tmp/opd-etcd-${name}-${id}`,
    OPD_ETCD_CLIENT_PORTS: `${base + 1} ${base + 2} ${base + 3}`,
    OPD_ETCD_PEER_PORTS: `${base + 101} ${base + 102} ${base + 103}`,
    OPD_ETCD_TOKEN: `opd-${name}-${id}`,
  };
  const sh = async (args: string[]) => {
    const r = await execa('bash', [SCRIPT, ...args], { reject: false, env, timeout: 120_000 });
    if (r.exitCode !== 0) throw new Error(`etcd.sh ${args.join(' ')}: ${r.stderr}`);
  };
  await sh(['up']);
  return {
    endpoints: [1, 2, 3].map((i) => `http://127.0.0.1:${base + i}`).join(','),
    sh,
    down: () => sh(['down']),
  };
}
