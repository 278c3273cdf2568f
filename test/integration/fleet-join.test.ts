/**
 * Hosts that join a fleet after a fragment was put, against a 3-member etcd cluster of this
 * file's own (scripts/backends/etcd.sh on private ports: this file clears /opd/ and may run
 * beside fleet.test.ts on the shared one). Without etcd auth a daemon writes its own fragment
 * copies from the fragments that select it; `fleet status` never calls a host converged while a
 * fragment that selects it has not reached it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { doc, opd, tmp, uniq } from '../helpers/opd.js';
import { etcdClient, privateEtcdCluster, startFleetDaemon, until, type FleetDaemon } from '../helpers/etcd.js';
import { expectOutput } from '../helpers/output-schema.js';
import { mergeFragments } from '../../src/fleet/merge.js';

const id = uniq(4);
const LATE = Array.from({ length: 10 }, (_, i) => `late${i}-${id}`);

interface Row {
  host: string;
  alive: boolean;
  converged: boolean;
  fragments: string[];
  expected: string;
  document: string | null;
  error: string | null;
}

describe('hosts that join after a put take the fragments that select them by themselves', () => {
  let cluster: Awaited<ReturnType<typeof privateEtcdCluster>>;
  let root: Etcd3;
  let base: string;
  const daemons = new Map<string, FleetDaemon>();
  const fleet = (args: string[]) => opd(['fleet', ...args], { env: { OPD_ETCD: cluster.endpoints } });
  const status = async (): Promise<Row[]> => {
    const r = await fleet(['status', '-o', 'json']);
    if (r.code !== 0) throw new Error(`fleet status exit ${r.code}: ${r.stderr}`);
    return expectOutput<{ hosts: Row[] }>('fleet-status', r.stdout).hosts;
  };

  beforeAll(async () => {
    cluster = await privateEtcdCluster('join', 24730);
    root = etcdClient(cluster.endpoints);
    base = tmp('opd-fleet-join-');
  });

  afterAll(async () => {
    for (const d of daemons.values()) await d.kill('SIGTERM');
    root?.close();
    await cluster?.down().catch(() => undefined);
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('converges ten hosts started after a put to it, and never reports one converged before its file is there', async () => {
    const f = doc(
      'version: 1\nplugins:\n  files:\n    /etc/motd: { content: "late joiner\\n", mode: "0644" }\n',
      tmp(),
      'role-late.yaml',
    );
    const put = await fleet(['put', f, '--selector', 'role=late']);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toContain('for 0 hosts');
    const t0 = Date.now();
    for (const h of LATE) {
      const d = startFleetDaemon({ endpoints: cluster.endpoints, host: h, dir: join(base, h), labels: ['role=late'] });
      daemons.set(h, d);
    }
    let polls = 0;
    let sawNotConverged = 0;
    const done = await until(
      async () => {
        const rs = (await status()).filter((r) => LATE.includes(r.host));
        polls++;
        for (const r of rs) {
          // the fragment selects every one of them, whatever it has received so far
          expect(r.fragments, r.host).toEqual(['role-late']);
          if (r.converged)
            expect(readFileSync(join(daemons.get(r.host)!.dir, 'etc/motd'), 'utf8'), r.host).toBe('late joiner\n');
          else sawNotConverged++;
        }
        return rs.length === LATE.length && rs.every((r) => r.alive && r.converged) ? rs : undefined;
      },
      'the ten late hosts converged',
      180_000,
    );
    const s = (Date.now() - t0) / 1000;
    expect(done.map((r) => r.host).sort()).toEqual([...LATE].sort());
    expect(new Set(done.map((r) => r.document)).size).toBe(1);
    expect(polls).toBeGreaterThan(0);
    console.log(
      `ten late hosts converged ${s.toFixed(1)} s after starting (${polls} status polls, ${sawNotConverged} not-yet rows)`,
    );
    // no operator step: the copies were written by the daemons themselves
    for (const h of LATE) expect(await root.get(`/opd/desired/${h}/role-late`).string()).toContain('late joiner');
    for (const h of LATE)
      expect(daemons.get(h)!.output()).toContain('wrote this host’s fragment copies from the fragments that select it');
  });

  it('takes a fragment changed after the hosts joined to every one of them', async () => {
    const f = doc(
      'version: 1\nplugins:\n  files:\n    /etc/motd: { content: "late joiner v2\\n", mode: "0644" }\n',
      tmp(),
      'role-late.yaml',
    );
    expect((await fleet(['put', f, '--selector', 'role=late'])).code).toBe(0);
    await until(
      async () => (await status()).filter((r) => LATE.includes(r.host) && r.converged).length === LATE.length,
      'the ten hosts converged to the new version',
      120_000,
    );
    for (const h of LATE) expect(readFileSync(join(daemons.get(h)!.dir, 'etc/motd'), 'utf8')).toBe('late joiner v2\n');
  });

  it('reports a selected host whose copy never arrived as not converged, naming the fragment, until fleet sync repairs it', async () => {
    // what an older daemon left behind (the case): it announced role=late, ran its empty
    // document and called itself converged, and nothing wrote its copy
    const h = `stale-${id}`;
    const empty = mergeFragments([]).hash;
    await root.put(`/opd/hosts/${h}/labels`).value(JSON.stringify({ role: 'late' }));
    await root.put(`/opd/hosts/${h}/status`).value(
      JSON.stringify({
        host: h,
        converged: true,
        document: empty,
        desired: empty,
        fragments: [],
        error: null,
        failing: [],
        drift_corrected: 0,
        last_run: { at: new Date().toISOString(), status: 'noop', changes: 0, drift: [], duration_ms: 1 },
        updated_at: new Date().toISOString(),
      }),
    );
    const before = (await status()).find((r) => r.host === h)!;
    expect(before.converged).toBe(false);
    expect(before.fragments).toEqual(['role-late']);
    expect(before.error).toContain('role-late: not received');
    const text = await fleet(['status']);
    expect(text.stdout).toMatch(new RegExp(`${h}\\s+no\\s+no\\s+0\\s+0\\s+noop .*role-late`));
    expect(text.stdout).toContain(
      `${h}: its fragment copies are behind the fragments that select it (role-late: not received)`,
    );
    const sync = await fleet(['sync']);
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.stdout).toBe(`updated 1 host: ${h}`);
    const after = (await status()).find((r) => r.host === h)!;
    // the copy is there now; the host has not reported applying it, so still not converged
    expect(after.converged).toBe(false);
    expect(after.error ?? '').not.toContain('not received');
    expect(after.document).toBe(empty);
    expect(after.expected).not.toBe(empty);
    await root.delete().prefix(`/opd/hosts/${h}/`);
    await root.delete().prefix(`/opd/desired/${h}/`);
  });

  it('drops the copy of a host that no longer announces the label when its daemon restarts', async () => {
    const h = LATE[0];
    await daemons.get(h)!.kill('SIGTERM');
    const d = startFleetDaemon({ endpoints: cluster.endpoints, host: h, dir: join(base, h), labels: ['role=other'] });
    daemons.set(h, d);
    await until(async () => {
      const r = (await status()).find((x) => x.host === h);
      return r?.alive && r.converged && r.fragments.length === 0;
    }, 'the relabelled host converged to no fragment');
    expect(await root.get(`/opd/desired/${h}/role-late`).string()).toBeNull();
    expect(existsSync(join(d.dir, 'etc/motd'))).toBe(true); // no longer managed, left in place
  });
});
