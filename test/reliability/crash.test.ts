/**
 * Every change on the record, whatever stops the run: 100 trials of `opd apply` on a 2,000-file
 * wave (under --root) beside a 1,000-port OVS wave (a private ovsdb-server), stopped by SIGKILL,
 * SIGINT or SIGTERM (every other SIGTERM trial sends it twice: the abort) at a random point of
 * its run chosen from what the host shows, never from a delay: a number t drawn uniformly from
 * 0 … F (F: the files the wave rewrites, creates or removes); the signal goes once run.start is
 * in the trail and t files of the wave have changed on the host (t = 0: right after run.start;
 * t = F: after the last file, while the rest of the run goes on). A loaded machine slows the run
 * and the test alike, so the kill points stay spread over the wave whatever the load.
 *
 * Before each trial the test snapshots the host side (every file's mode and content, every port's
 * tag); right after the stop and again after the next `opd apply` (which recovers first) it
 * checks, from the host side:
 * - every difference from the snapshot is accounted for by a `change` entry of the stopped run
 *   (result ok) or a `recovered` entry (found applied or partial), and each such entry is true of
 *   the host; a `not applied` one left the resource as it was;
 * - a run stopped by one SIGINT/SIGTERM ended with run.end `interrupted` and left nothing to
 *   recover; a killed or aborted one is closed by run.interrupted naming it;
 * - the chain verifies (the same walk as `opd audit verify`, which runs once at the end);
 * - no opd temp file is left under the root;
 * - the re-apply makes exactly the remaining changes (its change entries are the differences
 *   between the host after the stop and the document) and converges.
 * The closing line gives the distribution of the kill points as the number of changes the wave
 * had applied when the signal came (measured on the host); most must land inside the wave.
 *
 * The root, the trail and the OVS database live on tmpfs (/dev/shm) when there is one: the
 * trials are about what the record says after a stop, and tmpfs keeps them fast (fsync is a
 * no-op there; durability is the atomic write's own promise). Each trial is two runs of 3,000
 * changes and three reads of the host: 100 trials took 1,635 s on the 2 cores at a load average
 * of 12–16 (other suites beside them), less on a quiet CI machine; OPD_CRASH_TRIALS=N runs fewer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPD, doc, opd } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';
import { verifyLog } from '../../src/audit/verify.js';

const TRIALS = Number(process.env.OPD_CRASH_TRIALS ?? 100);
const BRIDGES = 10;
const PORTS = 100;
const FILES = 2000;
const DIR = '/etc/opd-crash';
const TEMP_NAME = /^\..+\.opd-[0-9a-f]{12}$/;

const fast = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
/** Directories of this file's tests (tmpfs is memory: they go when the tests end). */
const scratched: string[] = [];
const scratch = (p: string) => {
  const d = mkdtempSync(join(fast, p));
  scratched.push(d);
  return d;
};

/** Variant k: each variant differs from the previous one in every port and every file; every third removes half. */
function variant(k: number): string {
  const bridges: Record<string, unknown> = {};
  for (let b = 0; b < BRIDGES; b++) {
    const ports: Record<string, unknown> = {};
    for (let p = 0; p < PORTS; p++)
      ports[`k${b}p${p}`] = k % 3 === 2 && p % 2 ? { state: 'absent' } : { type: 'internal', tag: ((k + p) % 100) + 1 };
    bridges[`kbr${b}`] = { ports };
  }
  const paths: Record<string, unknown> = { [DIR]: { type: 'directory', mode: '0755' } };
  for (let f = 0; f < FILES; f++)
    paths[`${DIR}/f${f}.conf`] =
      k % 3 === 2 && f % 2
        ? { state: 'absent' }
        : { content: `variant ${k} file ${f}\n`, mode: f % 2 ? '0640' : '0644' };
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges }, files: { paths } } });
}

/** The host side as change addresses → what is there (absent: no key). */
type HostState = Map<string, string>;

function wanted(k: number): HostState {
  const s: HostState = new Map();
  for (let b = 0; b < BRIDGES; b++)
    for (let p = 0; p < PORTS; p++)
      if (!(k % 3 === 2 && p % 2)) s.set(`ovs/bridges/kbr${b}/ports/k${b}p${p}`, String(((k + p) % 100) + 1));
  for (let f = 0; f < FILES; f++)
    if (!(k % 3 === 2 && f % 2))
      s.set(`files/paths/${DIR}/f${f}.conf`, `${f % 2 ? '0640' : '0644'} variant ${k} file ${f}\n`);
  return s;
}

async function snapshot(ovs: OvsSandbox, root: string): Promise<HostState> {
  const s: HostState = new Map();
  const out = await ovs.vsctl(['--format=json', '--', '--columns=name,tag', 'list', 'Port']);
  for (const [name, tag] of (JSON.parse(out) as { data: [string, unknown][] }).data) {
    const m = /^k(\d+)p\d+$/.exec(name);
    if (m) s.set(`ovs/bridges/kbr${m[1]}/ports/${name}`, String(tag));
  }
  const dir = join(root, DIR);
  for (const n of existsSync(dir) ? readdirSync(dir) : []) {
    if (!/^f\d+\.conf$/.test(n)) continue;
    const p = join(dir, n);
    s.set(
      `files/paths/${DIR}/${n}`,
      `${(lstatSync(p).mode & 0o7777).toString(8).padStart(4, '0')} ${readFileSync(p, 'utf8')}`,
    );
  }
  return s;
}

/** Addresses where two host states differ. */
function differences(a: HostState, b: HostState): Set<string> {
  const out = new Set<string>();
  for (const [k, v] of a) if (b.get(k) !== v) out.add(k);
  for (const k of b.keys()) if (!a.has(k)) out.add(k);
  return out;
}

/** Temp files (opd's atomic-write leftovers) anywhere under `dir`. */
function temps(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (TEMP_NAME.test(n)) out.push(p);
      else if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

interface Entry {
  seq: number;
  ts: string;
  type: string;
  run: string;
  pid?: number;
  address?: string;
  result?: string;
  found?: string;
  leftover?: string;
  status?: string;
  interrupted?: string;
}

/** Complete lines of the trail from byte `offset` on. */
function entriesFrom(log: string, offset: number): Entry[] {
  const fd = openSync(log, 'r');
  try {
    const size = statSync(log).size;
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    return buf
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Entry);
  } finally {
    closeSync(fd);
  }
}

type Kind = 'SIGKILL' | 'SIGINT' | 'SIGTERM' | 'SIGTERM twice';

/** The inode of each wave file under the root (absent: no entry): an atomic rewrite makes a new one. */
function fileInodes(root: string): Map<number, number> {
  const m = new Map<number, number>();
  for (let f = 0; f < FILES; f++) {
    const st = lstatSync(join(root, DIR, `f${f}.conf`), { throwIfNoEntry: false });
    if (st) m.set(f, st.ino);
  }
  return m;
}

/** How many wave files differ on the host from `before` (written anew, created or removed). */
function filesChanged(root: string, before: Map<number, number>): number {
  let n = 0;
  for (let f = 0; f < FILES; f++)
    if (lstatSync(join(root, DIR, `f${f}.conf`), { throwIfNoEntry: false })?.ino !== before.get(f)) n++;
  return n;
}

/**
 * Start `opd apply FILE`; once its run.start is in the trail and `ready()` holds (polled on the
 * host side), send the signal (twice, 30 ms apart, for the abort). Returns how the process ended.
 */
async function stopInsideRun(
  file: string,
  env: Record<string, string>,
  kind: Kind,
  ready: () => boolean,
): Promise<{ exitCode?: number; signal?: string; run: string }> {
  const log = env.OPD_AUDIT_LOG;
  let offset = existsSync(log) ? statSync(log).size : 0;
  let partial = '';
  const child = execa('node', [OPD, 'apply', file], { env, reject: false });
  let exited = false;
  const done = child.then((r) => {
    exited = true;
    return r;
  });
  let run: string | undefined;
  const scan = () => {
    if (!existsSync(log)) return;
    const fd = openSync(log, 'r');
    try {
      const buf = Buffer.alloc(1 << 20);
      for (let n; (n = readSync(fd, buf, 0, buf.length, offset)) > 0; offset += n)
        partial += buf.toString('utf8', 0, n);
    } finally {
      closeSync(fd);
    }
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (!run && l.includes('"type":"run.start"')) {
        const e = JSON.parse(l) as Entry;
        if (e.pid === child.pid) run = e.run;
      }
    }
  };
  const deadline = Date.now() + 300_000;
  while (!run && !exited && Date.now() < deadline) {
    scan();
    if (!run) await new Promise((r) => setTimeout(r, 3));
  }
  if (!run) expect.fail(`opd apply never wrote run.start: ${(await done).stderr}`);
  while (!exited && !ready()) await new Promise((r) => setTimeout(r, 1));
  const sig = kind === 'SIGTERM twice' ? 'SIGTERM' : kind;
  child.kill(sig);
  if (kind === 'SIGTERM twice') {
    await new Promise((r) => setTimeout(r, 30));
    if (!exited) child.kill('SIGTERM');
  }
  const r = await done;
  return { exitCode: r.exitCode ?? undefined, signal: r.signal ?? undefined, run: run! };
}

/** Deterministic pseudo-random numbers, so that a failing trial can be replayed. */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

let ovs: OvsSandbox;
beforeAll(async () => {
  ovs = await startOvs({ dir: scratch('opd-crash-ovs-') });
});
afterAll(async () => {
  await ovs?.stop();
  for (const d of scratched) rmSync(d, { recursive: true, force: true });
});

describe('what opd apply says when it is stopped', () => {
  it('prints how many changes were applied and not started (exit 130), and the next run names a killed run by its id', async () => {
    const dir = scratch('opd-stop-say-');
    const root = scratch('opd-stop-say-root-');
    const env = { OPD_ROOT: root, OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_LOG_LEVEL: 'silent' };
    const log = env.OPD_AUDIT_LOG;
    let k = 0;
    const files = () => {
      const paths: Record<string, unknown> = {};
      for (let f = 0; f < FILES; f++) paths[`${DIR}/f${f}.conf`] = { content: `say ${k} ${f}\n` };
      return doc(JSON.stringify({ version: 1, plugins: { files: { paths } } }), dir, `say${k++}.json`);
    };
    // the signal goes once the host shows the first rewritten file; on a loaded machine the whole
    // wave may be written before it lands (the run then ends ok): such an attempt is made again
    // with the next variant, at most 5 times
    const stopOnce = async (kind: 'SIGINT' | 'SIGKILL') => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const offset = existsSync(log) ? statSync(log).size : 0;
        const inodes = fileInodes(root);
        const child = execa('node', [OPD, 'apply', files()], { env, reject: false });
        while (child.exitCode === null && filesChanged(root, inodes) === 0) await new Promise((r) => setTimeout(r, 1));
        child.kill(kind);
        const r = await child;
        const mine = entriesFrom(log, offset);
        const run = mine.find((e) => e.type === 'run.start')!.run;
        const end = mine.find((e) => e.type === 'run.end' && e.run === run);
        if (end && !end.interrupted) continue; // the run was over before the signal came
        return { r, run, end };
      }
      return expect.fail(`5 runs of ${FILES} files ended before ${kind} reached them`);
    };
    // SIGINT once the first files are written
    const int = await stopOnce('SIGINT');
    expect(int.r.exitCode, String(int.r.stderr)).toBe(130);
    const m =
      /^interrupted: (\d+) applied, (\d+) not started \(SIGINT; run (\S+), recorded in the audit trail\)$/m.exec(
        String(int.r.stdout),
      );
    expect(m, String(int.r.stdout).slice(-300)).not.toBeNull();
    expect(Number(m![1]) + Number(m![2])).toBe(FILES);
    expect(String(int.r.stderr)).toContain('opd: SIGINT: finishing the changes in flight, starting no new one');
    expect(m![3]).toBe(int.run);
    expect(int.end).toMatchObject({ run: int.run, status: 'interrupted', interrupted: 'SIGINT' });
    // SIGKILL: the next run names the dead run and what it found
    const killed = await stopOnce('SIGKILL');
    expect(killed.r.signal).toBe('SIGKILL');
    const again = await opd(['apply', join(dir, `say${k - 1}.json`)], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(
      new RegExp(`^opd: run ${killed.run} was interrupted; its \\d+ changes in flight, read from the host: `, 'm'),
    );
    expect(again.stderr).not.toContain('undefined');
    const shown = await opd(['audit', 'log', '--run', killed.run], { env });
    expect(shown.stdout).toMatch(/ recovered +(applied|not applied) update files\/paths\/\/etc\/opd-crash\/f\d+\.conf/);
    expect(shown.stdout).toMatch(/ run\.interrupted +the run ended without run\.end/);
  });
});

describe('stopping opd apply at any moment of its run', () => {
  it(
    `leaves every change on the record, recovered by the next apply: ${TRIALS} trials on 2,000 files and 1,000 OVS ports`,
    { timeout: 3_600_000 },
    async () => {
      const t0 = Date.now();
      const dir = scratch('opd-crash-');
      const root = scratch('opd-crash-root-');
      const env = {
        OPD_OVS_DB: ovs.db,
        OPD_ROOT: root,
        OPD_AUDIT_LOG: join(dir, 'audit-start.jsonl'),
        OPD_LOG_LEVEL: 'silent',
      };
      let log = env.OPD_AUDIT_LOG;
      // the start: everything created
      let k = 0;
      const first = await opd(['apply', doc(variant(k++), dir, 'v0.json')], { env });
      expect(first.code, first.stderr).toBe(0);

      const rnd = lcg(23);
      const kinds: Kind[] = ['SIGKILL', 'SIGINT', 'SIGTERM', 'SIGKILL', 'SIGINT', 'SIGTERM twice'];
      const points: { applied: number; total: number; kind: Kind }[] = [];
      for (let i = 0; i < TRIALS; i++) {
        // a new trail every 5 trials (the last one verified, then removed): a trail of 100 trials
        // would be ~500 MB on tmpfs, walked again after each trial
        if (i % 5 === 0) {
          rmSync(log, { force: true });
          log = env.OPD_AUDIT_LOG = join(dir, `audit-${i / 5}.jsonl`);
        }
        const vk = k++;
        const want = wanted(vk);
        const file = doc(variant(vk), dir, `v${vk}.json`);
        const kind = kinds[i % kinds.length];
        const s0 = await snapshot(ovs, root);
        const total = differences(s0, want).size;
        const offset = existsSync(log) ? statSync(log).size : 0;
        // the kill point: t of the wave's F file changes seen on the host, t uniform in 0 … F
        const inodes = fileInodes(root);
        const F = [...differences(s0, want)].filter((a) => a.startsWith('files/')).length;
        const t = Math.min(F, Math.floor(rnd() * (F + 1)));
        const stop = await stopInsideRun(file, env, kind, () => t === 0 || filesChanged(root, inodes) >= t);
        const s1 = await snapshot(ovs, root);
        const changed = differences(s0, s1);
        points.push({ applied: changed.size, total, kind });
        if (process.env.OPD_CRASH_DEBUG)
          console.log(
            `trial ${i} ${kind} at ${t}/${F} files: ${changed.size}/${total}; s0 ${s0.size} s1 ${s1.size}; exit ${stop.exitCode} ${stop.signal}`,
          );
        const what = `trial ${i} (${kind} once ${t} of ${F} files changed, ${changed.size} of ${total} applied)`;
        const stopped = entriesFrom(log, offset).filter((e) => e.run === stop.run);
        const end = stopped.find((e) => e.type === 'run.end');
        // how the process ended: a signal after run.end finds a finished run (exit 0, or the default action)
        if (end && !end.interrupted) expect(stop.exitCode === 0 || stop.signal !== undefined, what).toBe(true);
        else if (kind === 'SIGKILL') expect(stop.signal, what).toBe('SIGKILL');
        else {
          expect(stop.exitCode, what).toBe(kind === 'SIGINT' ? 130 : 143);
          if (kind !== 'SIGTERM twice') expect(end?.interrupted, `${what}: run.end`).toBe(kind);
          else if (end) expect(end.interrupted, what).toBe('SIGTERM');
        }

        // the next opd: recovery, then exactly the remaining changes
        const again = await opd(['apply', file], { env });
        expect(again.code, `${what}: ${again.stdout.slice(-500)}${again.stderr}`).toBe(0);
        const after = entriesFrom(log, offset);
        const mine = after.filter((e) => e.run === stop.run);
        const okChanges = new Set(mine.filter((e) => e.type === 'change' && e.result === 'ok').map((e) => e.address!));
        const recovered = mine.filter((e) => e.type === 'recovered' && e.address);
        const recApplied = new Set(
          recovered.filter((e) => e.found === 'applied' || e.found === 'partial').map((e) => e.address!),
        );
        // every difference on the host is on the record
        const unrecorded = [...changed].filter((a) => !okChanges.has(a) && !recApplied.has(a));
        expect(unrecorded.slice(0, 5), `${what}: changed on the host, not in the trail`).toEqual([]);
        // and the record is true of the host
        const wrong = [...okChanges, ...recovered.filter((e) => e.found === 'applied').map((e) => e.address!)].filter(
          (a) => s1.get(a) !== want.get(a),
        );
        expect(wrong.slice(0, 5), `${what}: recorded as applied, not so on the host`).toEqual([]);
        const stale = recovered
          .filter((e) => e.found === 'not applied')
          .map((e) => e.address!)
          .filter((a) => s1.get(a) !== s0.get(a));
        expect(stale.slice(0, 5), `${what}: recovered as not applied, changed on the host`).toEqual([]);
        // a clean stop leaves nothing to recover; a kill or an abort is closed by the next writer
        if (end) expect(recovered, `${what}: recovered after a clean stop`).toEqual([]);
        else
          expect(
            after.filter((e) => e.type === 'run.interrupted').map((e) => e.run),
            what,
          ).toEqual([stop.run]);
        // the chain verifies, no temp file is left, the re-apply did exactly what remained
        const v = verifyLog(log);
        expect(v.ok, `${what}: ${JSON.stringify(v.broken)}`).toBe(true);
        expect(temps(root), what).toEqual([]);
        expect(existsSync(log + '.tmpdirs'), what).toBe(false);
        const next = after.filter((e) => e.run !== stop.run);
        const reapplied = next.filter((e) => e.type === 'change').map((e) => e.address!);
        const remaining = differences(s1, want);
        expect(new Set(reapplied), what).toEqual(remaining);
        expect(next.find((e) => e.type === 'run.end')?.status ?? (remaining.size ? 'missing' : 'ok'), what).toBe('ok');
        expect(differences(await snapshot(ovs, root), want).size, `${what}: not converged`).toBe(0);
      }
      const v = await opd(['audit', 'verify'], { env });
      expect(v.code, v.stdout + v.stderr).toBe(0);

      // the distribution of the kill points: changes already applied in the wave when the signal came
      const inside = points.filter((p) => p.applied > 0 && p.applied < p.total).length;
      const before0 = points.filter((p) => p.applied === 0).length;
      const afterAll_ = points.filter((p) => p.applied >= p.total).length;
      const buckets = new Map<string, number>();
      for (const p of points) {
        const b =
          p.applied === 0
            ? '0'
            : p.applied >= p.total
              ? 'all'
              : `${Math.floor((p.applied / p.total) * 10) * 10}-${Math.floor((p.applied / p.total) * 10) * 10 + 10}%`;
        buckets.set(b, (buckets.get(b) ?? 0) + 1);
      }
      const order = ['0', ...Array.from({ length: 10 }, (_, d) => `${d * 10}-${d * 10 + 10}%`), 'all'];
      console.log(
        `crash trials: ${TRIALS} in ${Math.round((Date.now() - t0) / 1000)} s; kill points by changes already applied in the wave: ` +
          `${before0} before any, ${inside} inside, ${afterAll_} after all; ` +
          order
            .filter((b) => buckets.has(b))
            .map((b) => `${b}: ${buckets.get(b)}`)
            .join(', ') +
          `; by signal: ${[...new Set(points.map((p) => p.kind))].map((k) => `${k} ${points.filter((p) => p.kind === k).length}`).join(', ')}`,
      );
      expect(inside, 'most kills must land inside the wave').toBeGreaterThan(TRIALS / 2);
    },
  );
});
