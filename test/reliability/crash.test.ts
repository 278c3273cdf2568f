/**
 * Crash safety: `opd apply` is killed with SIGKILL at 30 points strictly inside its run: after
 * its `run.start` entry is in the audit trail and before its `run.end`. Each trial asserts what
 * recovery must show: the dead run is marked `run.interrupted` by the next writer, a torn last
 * line (when the kill tore one) is kept aside with a `recovery` entry, `opd audit verify` passes,
 * every change the trail records as applied is on the host (none lost), the next apply does not
 * apply any of them again (none twice), and it converges.
 *
 * Kill points: trial i waits for run.start, then kills after a pseudo-random delay or as soon as
 * the trail holds a pseudo-random number of the run's change entries (the trail is appended one
 * wave at a time), whichever comes first; the distribution (changes recorded before the kill) is
 * printed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { OPD, doc, opd, tmp } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';

let ovs: OvsSandbox;
beforeAll(async () => {
  ovs = await startOvs();
});
afterAll(async () => {
  await ovs?.stop();
});

const BRIDGES = 6;
const PORTS = 40;
const FILES = 40;

/** Variant k of a document: each variant differs from the previous one in every port. */
function variant(k: number): string {
  const bridges: Record<string, unknown> = {};
  for (let b = 0; b < BRIDGES; b++) {
    const ports: Record<string, unknown> = {};
    for (let p = 0; p < PORTS; p++)
      ports[`k${b}p${p}`] = k % 3 === 2 && p % 2 ? { state: 'absent' } : { type: 'internal', tag: ((k + p) % 100) + 1 };
    bridges[`kbr${b}`] = { ports };
  }
  const paths: Record<string, unknown> = { '/etc/opd-crash': { type: 'directory', mode: '0755' } };
  for (let f = 0; f < FILES; f++)
    paths[`/etc/opd-crash/f${f}.conf`] =
      k % 3 === 2 && f % 2
        ? { state: 'absent' }
        : { content: `variant ${k} file ${f}\n`, mode: f % 2 ? '0640' : '0644' };
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges }, files: { paths } } });
}

/** Deterministic pseudo-random numbers so that a failure can be replayed. */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

interface Entry {
  seq: number;
  type: string;
  run: string;
  pid?: number;
  address?: string;
  result?: string;
}

/** The trail's complete lines (a torn last line is reported separately). */
function readTrail(path: string): { entries: Entry[]; torn: boolean } {
  if (!existsSync(path)) return { entries: [], torn: false };
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const entries: Entry[] = [];
  let torn = last.length > 0;
  for (const l of lines) {
    if (!l) continue;
    try {
      entries.push(JSON.parse(l) as Entry);
    } catch {
      torn = true;
    }
  }
  return { entries, torn };
}

/**
 * Start `opd apply FILE` and kill it with SIGKILL strictly inside its run: once the trail shows
 * its run.start (found by pid), after `delayMs` or once `changes` change entries of the run are
 * recorded, whichever comes first. Fails loudly if the run ends before the kill could land.
 */
async function killInsideRun(
  file: string,
  env: Record<string, string>,
  delayMs: number,
  changes: number,
): Promise<{ run: string; recordedAtKill: number }> {
  const log = env.OPD_AUDIT_LOG;
  // follow the trail from its current end: only this run's entries are read, incrementally
  let offset = existsSync(log) ? statSync(log).size : 0;
  let partial = '';
  const child = execa('node', [OPD, 'apply', file], { env, reject: false });
  const deadline = Date.now() + 120_000;
  let run: string | undefined;
  let startedAt = 0;
  let recorded = 0;
  let ended = false;
  let recordedAtKill = -1;
  let exited = false;
  const done = child.then((r) => {
    exited = true;
    return r;
  });
  const buf = Buffer.alloc(1 << 20);
  while (!exited && !ended && Date.now() < deadline) {
    if (existsSync(log)) {
      const fd = openSync(log, 'r');
      try {
        for (let n; (n = readSync(fd, buf, 0, buf.length, offset)) > 0; offset += n)
          partial += buf.toString('utf8', 0, n);
      } finally {
        closeSync(fd);
      }
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        const e = JSON.parse(l) as Entry;
        if (!run && e.type === 'run.start' && e.pid === child.pid) {
          run = e.run;
          startedAt = Date.now();
        } else if (run && e.run === run) {
          if (e.type === 'change') recorded++;
          if (e.type === 'run.end') ended = true; // too late: reported below
        }
      }
    }
    if (run && !ended && (Date.now() - startedAt >= delayMs || recorded >= changes)) {
      child.kill('SIGKILL');
      recordedAtKill = recorded;
      break;
    }
    // the trail is appended in waves: look again at once (a 10,000-change engine verifies 280
    // changes in a few ms: a timer's latency on a loaded machine let run.end slip in before the kill)
    await new Promise((r) => setImmediate(r));
  }
  const r = await done;
  expect(run, `opd apply never wrote run.start (exit ${r.exitCode}): ${r.stdout}${r.stderr}`).toBeDefined();
  expect(r.signal, `the run ended before the kill could land (exit ${r.exitCode})`).toBe('SIGKILL');
  expect(recordedAtKill).toBeGreaterThanOrEqual(0);
  return { run: run!, recordedAtKill };
}

describe('killing opd apply inside its run', () => {
  it(
    'leaves a verifiable trail that matches the host, recovered by the next apply, 30 times over',
    { timeout: 1_800_000 },
    async () => {
      const dir = tmp();
      // two plugins: OVS ports on a private ovsdb-server and files under a sandbox root
      const env = {
        OPD_OVS_DB: ovs.db,
        OPD_ROOT: tmp('opd-crash-root-'),
        OPD_AUDIT_LOG: join(dir, 'audit.jsonl'),
        OPD_LOG_LEVEL: 'silent',
      };
      const total = BRIDGES * PORTS + FILES + 1;
      const rnd = lcg(7);
      const killPoints: number[] = [];
      for (let i = 0; i < 30; i++) {
        const file = doc(variant(i), dir, `v${i}.json`);
        // a third of the kills land within the first wave (a short delay after run.start), a third
        // right after the first wave is recorded, a third after a random later wave (or in verify)
        const r1 = rnd();
        const [delayMs, changes] =
          i % 3 === 0
            ? [Math.floor(r1 * 400), 1]
            : i % 3 === 1
              ? [Infinity, 1]
              : [Infinity, 2 + Math.floor(r1 * (total - 1))];
        const { run, recordedAtKill } = await killInsideRun(file, env, delayMs, changes);
        const after = readTrail(env.OPD_AUDIT_LOG);
        const mine = after.entries.filter((e) => e.run === run);
        expect(mine.map((e) => e.type)).not.toContain('run.end');
        const applied = mine.filter((e) => e.type === 'change' && e.result === 'ok').map((e) => e.address!);
        killPoints.push(mine.filter((e) => e.type === 'change').length);
        expect(killPoints.at(-1)).toBeGreaterThanOrEqual(recordedAtKill);

        const v = await opd(['audit', 'verify'], { env });
        expect(v.code, `trial ${i}: ${v.stdout}${v.stderr}`).toBe(0);
        if (after.torn) expect(v.stdout + v.stderr, `trial ${i}`).toContain('torn last line');

        // none lost: every change the trail records as applied is on the host
        const d = await opd(['diff', file, '-o', 'json'], { env });
        expect([0, 2], `trial ${i}: ${d.stderr}`).toContain(d.code);
        const pendingNow = new Set(
          (JSON.parse(d.stdout) as { changes: { address: string }[] }).changes.map((c) => c.address),
        );
        expect(
          applied.filter((a) => pendingNow.has(a)),
          `trial ${i}: recorded as applied but not on the host`,
        ).toEqual([]);

        // recovery, and none applied twice: the next apply redoes nothing the dead run recorded
        const seqBefore = after.entries.at(-1)?.seq ?? 0;
        const again = await opd(['apply', file], { env });
        expect(again.code, `trial ${i}: ${again.stdout}${again.stderr}`).toBe(0);
        const next = readTrail(env.OPD_AUDIT_LOG).entries.filter((e) => e.seq > seqBefore);
        expect(
          next.filter((e) => e.type === 'run.interrupted').map((e) => e.run),
          `trial ${i}`,
        ).toEqual([run]);
        if (after.torn) {
          expect(
            next.map((e) => e.type),
            `trial ${i}`,
          ).toContain('recovery');
          expect(
            readdirSync(dirname(env.OPD_AUDIT_LOG)).some((f) => f.startsWith(basename(env.OPD_AUDIT_LOG) + '.torn-')),
          ).toBe(true);
        }
        const redone = next.filter((e) => e.type === 'change' && applied.includes(e.address!)).map((e) => e.address);
        expect(redone, `trial ${i}: applied twice`).toEqual([]);
        expect((await opd(['diff', file], { env })).code, `trial ${i}`).toBe(0);
      }
      const { entries } = readTrail(env.OPD_AUDIT_LOG);
      const starts = new Set(entries.filter((e) => e.type === 'run.start').map((e) => e.run));
      const closed = new Set(
        entries.filter((e) => e.type === 'run.end' || e.type === 'run.interrupted').map((e) => e.run),
      );
      expect([...starts].filter((r) => !closed.has(r))).toEqual([]);
      expect(entries.filter((e) => e.type === 'run.interrupted')).toHaveLength(30);
      expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
      // kills spread over the run: before any change was recorded, and after some were
      expect(killPoints.some((k) => k === 0)).toBe(true);
      expect(killPoints.some((k) => k > 0)).toBe(true);
      const hist = new Map<number, number>();
      for (const k of killPoints) hist.set(k, (hist.get(k) ?? 0) + 1);
      console.log(
        `crash trials: changes recorded before the kill → trials: ${[...hist]
          .sort((a, b) => a[0] - b[0])
          .map(([k, n]) => `${k}→${n}`)
          .join(', ')}`,
      );
    },
  );
});
