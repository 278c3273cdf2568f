/**
 * A compromised fleet host, tried as an attacker would with its own etcd credentials, against a
 * 3-member etcd cluster of this file's own (scripts/backends/etcd.sh with private ports and data
 * dir: it enables etcd auth, which the shared cluster's other users must not see) and real daemons:
 * - it announces and writes labels of another role: it still gets only the fragments its enrolled
 *   labels select, after the operator's `opd fleet sync` too;
 * - it deletes its published audit heads, compacts etcd's history and rewrites its local trail:
 *   `opd audit verify --witness` fails against the witness the operator's copier keeps.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { Etcd3 } from 'etcd3';
import { OPD, ROOT, doc, opd, tmp, uniq } from '../helpers/opd.js';
import { etcdClient, startFleetDaemon, until, type FleetDaemon } from '../helpers/etcd.js';
import { expectOutput } from '../helpers/output-schema.js';

const id = uniq(4);
const WEB = `web-${id}`;
const DB = `db-${id}`;
const SECRET = `db-password-${uniq(10)}-never-on-web`;
const ETCD_ENV = {
  OPD_ETCD_DIR: `/var/tmp/opd-etcd-trust-${id}`,
  OPD_ETCD_CLIENT_PORTS: '24761 24762 24763',
  OPD_ETCD_PEER_PORTS: '24861 24862 24863',
  OPD_ETCD_TOKEN: `opd-trust-${id}`,
};
const ENDPOINTS = 'http://127.0.0.1:24761,http://127.0.0.1:24762,http://127.0.0.1:24763';

async function etcdSh(args: string[]): Promise<void> {
  const r = await execa('bash', [join(ROOT, 'scripts/backends/etcd.sh'), ...args], {
    reject: false,
    env: ETCD_ENV,
    timeout: 120_000,
  });
  if (r.exitCode !== 0) throw new Error(`etcd.sh ${args.join(' ')}: ${r.stderr}`);
}

describe('a compromised fleet host against enrolled labels and the audit witness (etcd auth on)', () => {
  let dir: string;
  let root: Etcd3;
  let rootPw: string;
  let host: Etcd3;
  let witness: ResultPromise | undefined;
  let witnessOut = '';
  const daemons = new Map<string, FleetDaemon>();
  const pwFile = (h: string) => join(dir, `${h}.pw`);
  const operator = () => ({ OPD_ETCD: ENDPOINTS, OPD_ETCD_USER: 'root', OPD_ETCD_PASSWORD_FILE: join(dir, 'root.pw') });
  const asHost = (h: string) => ({
    OPD_ETCD: ENDPOINTS,
    OPD_ETCD_USER: `opd-host-${h}`,
    OPD_ETCD_PASSWORD_FILE: pwFile(h),
  });
  const fleet = (args: string[]) => opd(['fleet', ...args], { env: operator() });
  const start = (h: string, labels: string[]) => {
    const d = startFleetDaemon({
      endpoints: ENDPOINTS,
      host: h,
      dir: join(dir, h),
      labels,
      args: ['--etcd-user', `opd-host-${h}`, '--etcd-password-file', pwFile(h)],
    });
    daemons.set(h, d);
    return d;
  };
  interface Row {
    host: string;
    alive: boolean;
    converged: boolean;
    enrolled: boolean;
    labels: Record<string, string>;
    announced_labels: Record<string, string>;
    fragments: string[];
  }
  const rows = async (): Promise<Row[]> => {
    const r = await fleet(['status', '-o', 'json']);
    if (r.code !== 0) throw new Error(`fleet status: ${r.stderr}`);
    return expectOutput<{ hosts: Row[] }>('fleet-status', r.stdout).hosts;
  };
  const verify = (h: string, env: Record<string, string>, extra: string[] = []) =>
    opd(['audit', 'verify', '--witness', '--host', h, '--audit-log', daemons.get(h)!.audit, ...extra], {
      env: { ...env, OPD_AUDIT_KEY: '' },
    });

  beforeAll(async () => {
    dir = tmp('opd-fleet-trust-');
    await etcdSh(['up']);
    root = etcdClient(ENDPOINTS);
    rootPw = uniq(16);
    writeFileSync(join(dir, 'root.pw'), rootPw + '\n', { mode: 0o600 });
    await root.user('root').create(rootPw);
    await root.role('root').create();
    await root.user('root').addRole('root');
    await root.auth.authEnable();
    root.close();
    root = etcdClient(ENDPOINTS, { username: 'root', password: rootPw });
    for (const [h, label] of [
      [WEB, 'role=web'],
      [DB, 'role=db'],
    ]) {
      const e = await fleet(['enroll', h, '--label', label, '--password-out', pwFile(h)]);
      expect(e.code, e.stderr).toBe(0);
    }
    // the operator's copier, as it would run beside the operator's tools
    witness = execa(process.execPath, [OPD, 'fleet', 'witness'], {
      reject: false,
      all: true,
      buffer: false,
      env: { ...operator(), OPD_LOG_LEVEL: 'info' },
    });
    witness.all?.on('data', (b: Buffer) => (witnessOut += b.toString()));
    await until(() => witnessOut.includes('following'), 'the witness copier following the hosts', 60_000);
    const web = doc(
      'version: 1\nplugins:\n  files:\n    /etc/motd: { content: "web\\n", mode: "0644" }\n',
      tmp(),
      'web.yaml',
    );
    const db = doc(
      `version: 1\nplugins:\n  files:\n    /etc/db.secret: { content: "${SECRET}\\n", mode: "0600" }\n`,
      tmp(),
      'db.yaml',
    );
    expect((await fleet(['put', web, '--selector', 'role=web'])).code).toBe(0);
    expect((await fleet(['put', db, '--selector', 'role=db'])).code).toBe(0);
    host = etcdClient(ENDPOINTS, { username: `opd-host-${WEB}`, password: readFileSync(pwFile(WEB), 'utf8').trim() });
    // the compromised web host announces the db role from the start
    start(WEB, ['role=db']);
    start(DB, ['role=db']);
    await until(
      async () => (await rows()).filter((r) => r.alive && r.converged).length === 2,
      'both daemons alive and converged',
      120_000,
    );
  });

  afterAll(async () => {
    for (const d of daemons.values()) await d.kill('SIGTERM');
    if (witness?.pid && witness.exitCode === null) process.kill(witness.pid, 'SIGTERM');
    await witness;
    host?.close();
    root?.close();
    // this file's own cluster (not the shared one): stopped by its pidfiles, data removed
    await etcdSh(['down']).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives a host that announces and writes labels of another role no fragment of that role, after a sync too', async () => {
    // the host writes its own labels key with its own credentials (it may: it is its status area)
    await host.put(`/opd/hosts/${WEB}/labels`).value(JSON.stringify({ role: 'db', tier: 'secret' }));
    const sync = await fleet(['sync']);
    expect(sync.code, sync.stderr).toBe(0);
    // what its credentials can read: its own copies, only the web fragment
    const copies = await host.getAll().prefix(`/opd/desired/${WEB}/`).keys();
    expect(copies).toEqual([`/opd/desired/${WEB}/web`]);
    await expect(host.get(`/opd/desired/${DB}/db`).string()).rejects.toThrow(/permission denied/i);
    // nor may it change the labels the operator fixed
    await expect(host.put(`/opd/enrolled/${WEB}`).value('{"labels":{"role":"db"}}')).rejects.toThrow(
      /permission denied/i,
    );
    const rs = await rows();
    const w = rs.find((r) => r.host === WEB)!;
    expect(w).toMatchObject({
      enrolled: true,
      labels: { role: 'web' },
      announced_labels: { role: 'db', tier: 'secret' },
      fragments: ['web'],
    });
    expect(rs.find((r) => r.host === DB)!.fragments).toEqual(['db']);
    const text = await fleet(['status']);
    expect(text.stdout).toContain(`${WEB}: announces labels role=db,tier=secret; its enrolled labels role=web select`);
    // on the host's disk: the web file, never the db secret; the db host has it
    const d = daemons.get(WEB)!;
    await until(() => existsSync(join(d.dir, 'etc/motd')), 'the web fragment applied on the web host');
    expect(existsSync(join(d.dir, 'etc/db.secret'))).toBe(false);
    expect(readFileSync(join(daemons.get(DB)!.dir, 'etc/db.secret'), 'utf8')).toBe(`${SECRET}\n`);
    expect(JSON.stringify(rs)).not.toContain(SECRET);
  });

  it('gives a host enrolled after the puts its fragments with no further operator step, while it may neither read the fragments nor write its copies', async () => {
    const late = `web2-${id}`;
    const e = await fleet(['enroll', late, '--label', 'role=web', '--password-out', pwFile(late)]);
    expect(e.code, e.stderr).toBe(0);
    // it announces the db role: its enrolled role=web alone selects
    const d = start(late, ['role=db']);
    await until(
      async () => {
        const r = (await rows()).find((x) => x.host === late);
        return r?.alive && r.converged;
      },
      'the host enrolled after the puts converged',
      120_000,
    );
    expect(readFileSync(join(d.dir, 'etc/motd'), 'utf8')).toBe('web\n');
    expect(existsSync(join(d.dir, 'etc/db.secret'))).toBe(false);
    expect(d.output()).toContain('this host may not read /opd/fragments/ (etcd auth)');
    const c = etcdClient(ENDPOINTS, {
      username: `opd-host-${late}`,
      password: readFileSync(pwFile(late), 'utf8').trim(),
    });
    try {
      await expect(c.getAll().prefix('/opd/fragments/').keys()).rejects.toThrow(/permission denied/i);
      await expect(c.put(`/opd/desired/${late}/db`).value('{}')).rejects.toThrow(/permission denied/i);
    } finally {
      c.close();
    }
  });

  it('moves a host to another role only when the operator relabels it', async () => {
    const r = await fleet(['relabel', WEB, '--label', 'role=web', '--label', 'zone=a']);
    expect(r.code, r.stderr).toBe(0);
    expect((await rows()).find((x) => x.host === WEB)!.labels).toEqual({ role: 'web', zone: 'a' });
    const no = await fleet(['relabel', `never-${id}`, '--label', 'role=db']);
    expect(no.code).toBe(64);
    expect(no.stderr).toContain('is not enrolled');
  });

  it('catches a host that deletes its published heads, compacts the history and rewrites its local trail', async () => {
    const d = daemons.get(WEB)!;
    // the copier has seen the host's latest head; the trail agrees with it, checked with the host's own credentials
    const published = JSON.parse((await root.get(`/opd/hosts/${WEB}/audit-head`).string())!) as { seq: number };
    await until(
      async () =>
        (await root.get(`/opd/witness/${WEB}/heads/${String(published.seq).padStart(16, '0')}`).string()) !== null,
      'the copier to witness the latest head',
    );
    await d.kill('SIGTERM');
    const ok = await verify(WEB, asHost(WEB));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`agrees with the \\d+ audit heads? etcd's witness holds for ${WEB}`));
    const witnessed = await root.getAll().prefix(`/opd/witness/${WEB}/heads/`).keys();

    // the attack, with the host's own credentials: its keys gone, etcd's history compacted
    const del = await host.delete().prefix(`/opd/hosts/${WEB}/`);
    expect(Number(del.deleted)).toBeGreaterThan(0);
    const rev = (await host.get(`/opd/desired/${WEB}/web`).exec()).header.revision;
    await host.kv.compact({ revision: rev });
    await expect(host.delete().prefix(`/opd/witness/${WEB}/`)).rejects.toThrow(/permission denied/i);
    await expect(host.put(`/opd/witness/${WEB}/heads/0000000000000001`).value('{}')).rejects.toThrow(
      /permission denied/i,
    );
    expect(await root.getAll().prefix(`/opd/witness/${WEB}/heads/`).keys()).toEqual(witnessed);

    // 1. the local trail cut short (its last entries), its head file rewritten to match
    const orig = readFileSync(d.audit, 'utf8');
    const lines = orig.split('\n').filter(Boolean);
    const keep = lines.slice(0, lines.length - 2);
    writeFileSync(d.audit, keep.map((l) => l + '\n').join(''));
    const last = JSON.parse(keep[keep.length - 1]) as { seq: number; hash: string };
    writeFileSync(d.audit + '.head', JSON.stringify({ seq: last.seq, hash: last.hash }));
    const plain = await opd(['audit', 'verify', '--audit-log', d.audit], { env: { OPD_AUDIT_KEY: '' } });
    expect(plain.code, plain.stderr).toBe(0); // without the witness the cut is invisible
    const cut = await verify(WEB, asHost(WEB));
    expect(cut.code).toBe(1);
    expect(cut.stderr).toContain(`etcd witnessed seq ${published.seq}`);
    expect(cut.stderr).toContain('truncated, reset or removed');
    expect(cut.stderr).toContain('is gone (deleted');

    // 2. a brand-new trail, grown past the witnessed length (every entry's hash differs)
    rmSync(d.audit);
    rmSync(d.audit + '.head', { force: true });
    const state = doc('version: 1\nplugins:\n  files:\n    /etc/reset: { content: "0\\n" }\n', tmp(), 'reset.yaml');
    for (let i = 1; ; i++) {
      writeFileSync(state, `version: 1\nplugins:\n  files:\n    /etc/reset: { content: "${i}\\n" }\n`);
      const a = await opd(['apply', state, '--root', d.dir, '--audit-log', d.audit], { env: { OPD_AUDIT_KEY: '' } });
      expect(a.code, a.stderr).toBe(0);
      const n = readFileSync(d.audit, 'utf8').split('\n').filter(Boolean).length;
      if (n > published.seq + 1) break;
    }
    expect((await opd(['audit', 'verify', '--audit-log', d.audit], { env: { OPD_AUDIT_KEY: '' } })).code).toBe(0);
    const reset = await verify(WEB, asHost(WEB), ['-o', 'json']);
    expect(reset.code).toBe(1);
    const j = JSON.parse(reset.stdout) as { witness: { ok: boolean; problems: string[] } };
    expect(j.witness.ok).toBe(false);
    expect(j.witness.problems.join('\n')).toMatch(
      /entry seq \d+ is not the one etcd witnessed .*: the trail was rewritten/,
    );
    // the operator's view is the same
    expect((await verify(WEB, operator())).code).toBe(1);

    // 3. no trail at all
    rmSync(d.audit);
    const gone = await verify(WEB, asHost(WEB));
    expect(gone.code).not.toBe(0);
  });

  it('records a second hash published for a witnessed seq as a conflict that verify reports', async () => {
    const heads = Object.values(await root.getAll().prefix(`/opd/witness/${DB}/heads/`).strings()).map(
      (v) => JSON.parse(v) as { seq: number; hash: string },
    );
    expect(heads.length).toBeGreaterThan(0);
    const dbHost = etcdClient(ENDPOINTS, {
      username: `opd-host-${DB}`,
      password: readFileSync(pwFile(DB), 'utf8').trim(),
    });
    try {
      await daemons.get(DB)!.kill('SIGTERM');
      await dbHost
        .put(`/opd/hosts/${DB}/audit-head`)
        .value(JSON.stringify({ seq: heads[0].seq, hash: 'f'.repeat(64) }));
    } finally {
      dbHost.close();
    }
    await until(
      async () => witnessOut.includes(`${DB}: head seq ${heads[0].seq}`),
      'the copier to notice the conflict',
    );
    const r = await verify(DB, operator());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `the host published hash ffffffffffff for seq ${heads[0].seq}, after ${heads[0].hash.slice(0, 12)} had been witnessed`,
    );
  });

  it('fails for a host with no witnessed history at all', async () => {
    const log = join(dir, 'nobody.jsonl');
    const a = await opd(
      [
        'apply',
        doc('version: 1\nplugins:\n  files:\n    /etc/x: { content: "x\\n" }\n'),
        '--root',
        tmp(),
        '--audit-log',
        log,
      ],
      { env: { OPD_AUDIT_KEY: '' } },
    );
    expect(a.code, a.stderr).toBe(0);
    const r = await opd(['audit', 'verify', '--witness', '--host', `unknown-${id}`, '--audit-log', log], {
      env: { ...operator(), OPD_AUDIT_KEY: '' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`holds no audit head for unknown-${id}: no history to vouch for`);
  });
});
