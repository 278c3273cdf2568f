/**
 * Crash safety: opd apply is killed with SIGKILL at random points. Afterwards the audit trail
 * verifies (a torn last line is reported and kept aside), the lock is recovered, the next
 * apply converges, and every run is accounted for (ended or marked interrupted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, doc, opd, tmp } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';

let ovs: OvsSandbox;
beforeAll(async () => {
  ovs = await startOvs();
});
afterAll(async () => {
  await ovs?.stop();
});

/** Variant k of a document: each variant differs from the previous one in every port. */
function variant(k: number): string {
  const bridges: Record<string, unknown> = {};
  for (let b = 0; b < 6; b++) {
    const ports: Record<string, unknown> = {};
    for (let p = 0; p < 40; p++) ports[`k${b}p${p}`] = k % 3 === 2 && p % 2 ? { state: 'absent' } : { type: 'internal', tag: ((k + p) % 100) + 1 };
    bridges[`kbr${b}`] = { ports };
  }
  const paths: Record<string, unknown> = { '/etc/opd-crash': { type: 'directory', mode: '0755' } };
  for (let f = 0; f < 40; f++) paths[`/etc/opd-crash/f${f}.conf`] = k % 3 === 2 && f % 2 ? { state: 'absent' } : { content: `variant ${k} file ${f}\n`, mode: f % 2 ? '0640' : '0644' };
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges }, files: { paths } } });
}

// deterministic pseudo-random delays so a failure can be replayed
function delays(n: number, seed = 7): number[] {
  const out: number[] = [];
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push(150 + (x % 900));
  }
  return out;
}

describe('killing opd apply at random points', () => {
  it('leaves a verifiable audit trail and a host the next apply converges, 30 times over', { timeout: 900_000 }, async () => {
    const dir = tmp();
    // two plugins: OVS ports on a private ovsdb-server and files under a sandbox root
    const env = { OPD_OVS_DB: ovs.db, OPD_ROOT: tmp('opd-crash-root-'), OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_LOG_LEVEL: 'silent' };
    const kills = delays(30);
    let killedMidRun = 0;
    for (let i = 0; i < kills.length; i++) {
      const file = doc(variant(i), dir, `v${i}.json`);
      const child = execa('node', [OPD, 'apply', file], { env, reject: false });
      const timer = setTimeout(() => child.kill('SIGKILL'), kills[i]);
      const r = await child;
      clearTimeout(timer);
      if (r.signal === 'SIGKILL') killedMidRun++;
      const v = await opd(['audit', 'verify'], { env });
      expect(v.code, `trial ${i} (kill after ${kills[i]} ms): ${v.stdout}${v.stderr}`).toBe(0);
      const again = await opd(['apply', file], { env });
      expect(again.code, `trial ${i}: ${again.stdout}${again.stderr}`).toBe(0);
      expect((await opd(['diff', file], { env })).code, `trial ${i}`).toBe(0);
    }
    expect(killedMidRun).toBeGreaterThanOrEqual(10);
    const entries = readFileSync(env.OPD_AUDIT_LOG, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const starts = new Set(entries.filter((e) => e.type === 'run.start').map((e) => e.run));
    const closed = new Set(entries.filter((e) => e.type === 'run.end' || e.type === 'run.interrupted').map((e) => e.run));
    expect([...starts].filter((r) => !closed.has(r))).toEqual([]);
    // no run's changes were recorded twice
    for (const run of starts) {
      const addrs = entries.filter((e) => e.run === run && e.type === 'change').map((e) => e.address);
      expect(new Set(addrs).size).toBe(addrs.length);
    }
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
