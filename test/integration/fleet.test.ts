/**
 * Fleet mode against the private 3-member etcd cluster (scripts/backends/etcd.sh): several
 * `opd daemon --etcd` processes, each with a --root sandbox and audit trail of its own (the
 * files plugin), converged from fragments; etcd members stopped and started under them.
 */
import { expectOutput } from '../helpers/output-schema.js';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Etcd3 } from 'etcd3';
import { opd, tmp, doc, uniq, OPD } from '../helpers/opd.js';
import { etcdClient, etcdCluster, etcdScript, startFleetDaemon, until, type FleetDaemon } from '../helpers/etcd.js';
import { pendingIntents } from '../../src/run/recover.js';
import type { AuditEntry } from '../../src/audit/walk.js';

const id = uniq(4);
const H1 = `kvm1-${id}`;
const H2 = `kvm2-${id}`;
const H3 = `db1-${id}`;

interface Row {
  host: string;
  alive: boolean;
  converged: boolean;
  fragments: string[];
  drift_corrected: number;
  error: string | null;
  updated_at: string | null;
}

describe('opd fleet: many hosts converged from a 3-member etcd cluster', () => {
  let endpoints: string;
  let root: Etcd3;
  let base: string;
  const daemons = new Map<string, FleetDaemon>();
  const env = () => ({ OPD_ETCD: endpoints });
  const fleet = (args: string[], extra: Record<string, string> = {}) =>
    opd(['fleet', ...args], { env: { ...env(), ...extra } });
  const status = async (): Promise<Row[]> => {
    const r = await fleet(['status', '-o', 'json']);
    if (r.code !== 0) throw new Error(`fleet status exit ${r.code}: ${r.stderr}`);
    return expectOutput<{ hosts: Row[] }>('fleet-status', r.stdout).hosts;
  };
  const row = async (h: string) => (await status()).find((r) => r.host === h);
  const file = (h: string, p: string) => join(daemons.get(h)!.dir, p);
  const start = (h: string, labels: string[]) => {
    const d = startFleetDaemon({ endpoints, host: h, dir: join(base, h), labels });
    daemons.set(h, d);
    return d;
  };

  beforeAll(async () => {
    endpoints = await etcdCluster();
    root = etcdClient(endpoints);
    await root.delete().prefix('/opd/');
    base = tmp('opd-fleet-');
    start(H1, ['role=kvm']);
    start(H2, ['role=kvm']);
    start(H3, ['role=db']);
    // every daemon announced itself and wrote its first status
    await until(async () => (await status()).filter((r) => r.alive).length === 3, 'three daemons alive', 90_000);
  });

  afterAll(async () => {
    for (const d of daemons.values()) await d.kill('SIGTERM');
    await etcdScript(['start']).catch(() => undefined);
    await root
      ?.delete()
      .prefix('/opd/')
      .catch(() => undefined);
    root?.close();
  });

  it('converges a fragment put for a label on every daemon with that label and on no other, and reports them converged', async () => {
    const f = doc(
      'version: 1\nplugins:\n  files:\n    /etc/motd: { content: "kvm host\\n", mode: "0644" }\n',
      tmp(),
      'role-kvm.yaml',
    );
    const put = await fleet(['put', f, '--selector', 'role=kvm']);
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect(put.stdout).toContain(`for 2 hosts: ${H1}, ${H2}`);
    const rows = await until(async () => {
      const rs = await status();
      return rs.filter((r) => r.converged && r.fragments.includes('role-kvm')).length === 2 ? rs : undefined;
    }, 'both kvm hosts converged');
    expect(readFileSync(file(H1, 'etc/motd'), 'utf8')).toBe('kvm host\n');
    expect(readFileSync(file(H2, 'etc/motd'), 'utf8')).toBe('kvm host\n');
    expect(existsSync(file(H3, 'etc/motd'))).toBe(false);
    const r3 = rows.find((r) => r.host === H3)!;
    expect(r3.fragments).toEqual([]);
    expect(rows.map((r) => r.host).sort()).toEqual([H1, H2, H3].sort());
    for (const r of rows) expect(typeof r.converged).toBe('boolean');
  });

  it('refuses an invalid fragment with exit 65 and stores nothing', async () => {
    const bad = doc('version: 1\nplugins:\n  files:\n    /etc/x: { content: 1, bogus: true }\n', tmp(), 'bad.yaml');
    const r = await fleet(['put', bad, '--selector', 'role=kvm']);
    expect(r.code).toBe(65);
    expect(await root.get('/opd/fragments/bad').string()).toBeNull();
  });

  it('reports two fragments setting one field differently as a conflict naming both, and applies nothing of it', async () => {
    const f = doc(
      'version: 1\nplugins:\n  files:\n    /etc/motd: { content: "other\\n", mode: "0644" }\n',
      tmp(),
      'clash.yaml',
    );
    const put = await fleet(['put', f, '--host', H1]);
    expect(put.code).toBe(0);
    expect(put.stderr).toContain('both set');
    const r = await until(async () => {
      const x = await row(H1);
      return x?.error?.includes('both set') && !x.converged ? x : undefined;
    }, 'the conflict in the status of the host');
    expect(r.error).toContain('"clash"');
    expect(r.error).toContain('"role-kvm"');
    expect(r.error).toContain('/etc/motd');
    expect(readFileSync(file(H1, 'etc/motd'), 'utf8')).toBe('kvm host\n');
    expect((await fleet(['delete', 'clash'])).code).toBe(0);
    await until(async () => (await row(H1))?.converged, 'the host converged again after the conflict was removed');
  });

  it('completes a rollout batch by batch while one etcd member is stopped in the middle of it', async () => {
    const f = doc(
      'version: 1\nplugins:\n  files:\n    /etc/opd-rollout: { content: "v2\\n", mode: "0600" }\n',
      tmp(),
      'rollout.yaml',
    );
    const p = execa(
      process.execPath,
      [OPD, 'fleet', 'rollout', f, '--selector', 'role=kvm', '--batch', '1', '--max-failed', '0', '--timeout', '120'],
      {
        reject: false,
        env: { ...env(), OPD_LOG_LEVEL: 'warn' },
        buffer: true,
      },
    );
    let out = '';
    let stopped = false;
    const killed = new Promise<void>((resolve) => {
      p.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        if (!stopped && /batch 1\/2/.test(out)) {
          stopped = true;
          void etcdScript(['stop', '1']).then(() => resolve());
        }
      });
    });
    const r = await p;
    await killed;
    expect(stopped).toBe(true);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/batch 1\/2: .*\n.*converged/);
    expect(String(r.stdout)).toMatch(/batch 2\/2: /);
    expect(String(r.stdout)).toContain('rollout complete: 2 converged, 0 failed');
    expect(readFileSync(file(H1, 'etc/opd-rollout'), 'utf8')).toBe('v2\n');
    expect(readFileSync(file(H2, 'etc/opd-rollout'), 'utf8')).toBe('v2\n');
    expect(existsSync(file(H3, 'etc/opd-rollout'))).toBe(false);
    await etcdScript(['start', '1']);
  });

  it('leaves every host’s trail complete when a rollout is aborted in the middle of a host’s run (Ctrl-C, fragment deleted)', async () => {
    const paths: Record<string, unknown> = {};
    for (let i = 0; i < 300; i++) paths[`/etc/opd-abort/f${i}.conf`] = { content: `abort ${i}\n` };
    const f = doc(JSON.stringify({ version: 1, plugins: { files: { paths } } }), tmp(), 'abort.json');
    const h1 = daemons.get(H1)!;
    const seen = readFileSync(h1.audit, 'utf8').length;
    const p = execa(
      process.execPath,
      [OPD, 'fleet', 'rollout', f, '--selector', 'role=kvm', '--batch', '1', '--timeout', '120'],
      { reject: false, env: { ...env(), OPD_LOG_LEVEL: 'warn' } },
    );
    // the first host has begun its wave: the operator aborts the rollout and deletes the fragment
    await until(
      () => readFileSync(h1.audit, 'utf8').slice(seen).includes('"type":"intent"'),
      'the wave on the first host',
      90_000,
    );
    p.kill('SIGINT');
    await p;
    expect((await fleet(['delete', 'abort'])).code).toBe(0);
    await until(
      async () => (await status()).filter((r) => r.converged && r.alive).length === 3,
      'every host settled',
      90_000,
    );
    for (const h of [H1, H2, H3]) {
      const d = daemons.get(h)!;
      const v = await opd(['audit', 'verify', '--audit-log', d.audit], { env: { OPD_AUDIT_KEY: '' } });
      expect(v.code, `${h}: ${v.stdout}${v.stderr}`).toBe(0);
      const entries = readFileSync(d.audit, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AuditEntry);
      const runs = new Set(entries.filter((e) => e.type === 'run.start').map((e) => e.run));
      const closed = new Set(
        entries.filter((e) => e.type === 'run.end' || e.type === 'run.interrupted').map((e) => e.run),
      );
      expect(
        [...runs].filter((r) => !closed.has(r)),
        `${h}: runs without an end`,
      ).toEqual([]);
      for (const r of runs) expect(pendingIntents(entries.filter((e) => e.run === r)), `${h} run ${r}`).toEqual([]);
      // what the aborted rollout wrote on this host is on its record
      const ok = new Set(entries.filter((e) => e.type === 'change' && e.result === 'ok').map((e) => e.address));
      for (let i = 0; i < 300; i++)
        if (existsSync(file(h, `etc/opd-abort/f${i}.conf`)))
          expect(ok.has(`files/paths//etc/opd-abort/f${i}.conf`), `${h}: f${i}.conf`).toBe(true);
    }
    expect(existsSync(file(H1, 'etc/opd-abort/f0.conf'))).toBe(true);
  });

  it('repairs drift made by hand from the last-known-good document while all three members are stopped, and statuses catch up when etcd returns', async () => {
    const before = (await row(H1))!;
    await etcdScript(['stop']);
    try {
      writeFileSync(file(H1, 'etc/motd'), 'changed by hand\n');
      await until(() => readFileSync(file(H1, 'etc/motd'), 'utf8') === 'kvm host\n', 'the drift repaired without etcd');
      const log = readFileSync(daemons.get(H1)!.audit, 'utf8');
      expect(log).toContain('"type":"drift"');
    } finally {
      await etcdScript(['start']);
    }
    const after = await until(
      async () => {
        const x = await row(H1);
        return x && x.drift_corrected > before.drift_corrected && x.converged && x.alive ? x : undefined;
      },
      'the status of the host to catch up after etcd returned',
      90_000,
    );
    expect(Date.parse(after.updated_at!)).toBeGreaterThan(Date.parse(before.updated_at!));
  });

  it('shows a daemon killed with SIGKILL as not alive after its lease, and alive and converged again when started', async () => {
    await daemons.get(H2)!.kill('SIGKILL');
    await until(async () => (await row(H2))?.alive === false, 'the killed host to show not alive', 60_000);
    start(H2, ['role=kvm']);
    const r = await until(
      async () => {
        const x = await row(H2);
        return x?.alive && x.converged ? x : undefined;
      },
      'the restarted host alive and converged',
      90_000,
    );
    expect(r.fragments).toEqual(['role-kvm', 'rollout']);
  });

  it('catches a local audit trail truncated by hand (head rewritten to match) with opd audit verify --witness', async () => {
    const d = daemons.get(H1)!;
    await d.kill('SIGTERM');
    // the operator's copier takes the heads etcd holds into the witness (hosts may only read it)
    const copied = await fleet(['witness', '--once']);
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.stdout).toContain(`witnessed ${H1} seq`);
    const okNow = await opd(['audit', 'verify', '--witness', '--host', H1, '--audit-log', d.audit], {
      env: { ...env(), OPD_AUDIT_KEY: '' },
    });
    expect(okNow.code, okNow.stderr).toBe(0);
    const lines = readFileSync(d.audit, 'utf8').split('\n').filter(Boolean);
    const keep = lines.slice(0, lines.length - 3);
    writeFileSync(d.audit, keep.map((l) => l + '\n').join(''));
    const last = JSON.parse(keep[keep.length - 1]) as { seq: number; hash: string };
    writeFileSync(d.audit + '.head', JSON.stringify({ seq: last.seq, hash: last.hash }));
    // without the witness the cut is invisible (no HMAC key)
    const plain = await opd(['audit', 'verify', '--audit-log', d.audit], { env: { OPD_AUDIT_KEY: '' } });
    expect(plain.code).toBe(0);
    const w = await opd(['audit', 'verify', '--witness', '--host', H1, '--audit-log', d.audit], {
      env: { ...env(), OPD_AUDIT_KEY: '' },
    });
    expect(w.code).toBe(1);
    expect(w.stderr).toContain('truncated');
  });

  it("refuses host A's credentials reading host B's fragment copies or writing B's status (etcd auth on)", async () => {
    const dir = tmp('opd-fleet-auth-');
    const pa = join(dir, 'a.pw');
    const e1 = await fleet(['enroll', H1, '--label', 'role=kvm', '--password-out', pa]);
    expect(e1.code, e1.stderr).toBe(0);
    expect((await fleet(['enroll', H2, '--label', 'role=kvm', '--password-out', join(dir, 'b.pw')])).code).toBe(0);
    const rootPw = uniq(12);
    await root.user('root').create(rootPw);
    await root
      .role('root')
      .create()
      .catch(() => undefined);
    await root.user('root').addRole('root');
    await root.auth.authEnable();
    const a = etcdClient(endpoints, { username: `opd-host-${H1}`, password: readFileSync(pa, 'utf8').trim() });
    try {
      // its own: readable and writable
      expect(await a.get(`/opd/desired/${H1}/role-kvm`).string()).toContain('kvm host');
      await a.put(`/opd/hosts/${H1}/status`).value('{}');
      // B's: refused by etcd
      await expect(a.get(`/opd/desired/${H2}/role-kvm`).string()).rejects.toThrow(/permission denied/i);
      await expect(a.put(`/opd/hosts/${H2}/status`).value('{}')).rejects.toThrow(/permission denied/i);
      await expect(a.get('/opd/fragments/role-kvm').string()).rejects.toThrow(/permission denied/i);
    } finally {
      a.close();
      const r = etcdClient(endpoints, { username: 'root', password: rootPw });
      await r.auth.authDisable();
      r.close();
      await root
        .user('root')
        .delete()
        .catch(() => undefined);
    }
  });
});
