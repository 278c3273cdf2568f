/**
 * Signed fragments against a 3-member etcd cluster of this file's own (scripts/backends/etcd.sh on
 * private ports: it clears /opd/ and may run beside fleet.test.ts): three daemons trusting the
 * operator's public key (--fleet-keys) apply what that key signed and refuse, on every host, an
 * unsigned fragment, one signed by an unknown key and one changed in etcd after signing — each
 * reported in `fleet status` and never applied. A key rotation with an overlap; `fleet verify`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import { doc, opd, tmp, uniq } from '../helpers/opd.js';
import { etcdClient, privateEtcdCluster, startFleetDaemon, until, type FleetDaemon } from '../helpers/etcd.js';
import { expectOutput } from '../helpers/output-schema.js';

const id = uniq(4);
const HOSTS = ['a', 'b', 'c'].map((x) => `sig${x}-${id}`);

interface Row {
  host: string;
  alive: boolean;
  converged: boolean;
  fragments: string[];
  refused: { fragment: string; reason: string }[];
  verified: boolean | null;
  error: string | null;
}

describe('signed fragments: daemons apply only what a trusted operator key signed', () => {
  let cluster: Awaited<ReturnType<typeof privateEtcdCluster>>;
  let root: Etcd3;
  let dir: string;
  let trusted: string;
  const daemons = new Map<string, FleetDaemon>();
  const key = (n: string) => join(dir, n);
  const fleet = (args: string[]) => opd(['fleet', ...args], { env: { OPD_ETCD: cluster.endpoints } });
  const status = async (): Promise<Row[]> => {
    const r = await fleet(['status', '-o', 'json']);
    if (r.code !== 0) throw new Error(`fleet status exit ${r.code}: ${r.stderr}`);
    return expectOutput<{ hosts: Row[] }>('fleet-status', r.stdout).hosts;
  };
  const file = (h: string, p: string) => join(daemons.get(h)!.dir, p);
  const fragment = (name: string, path: string, content: string) =>
    doc(
      `version: 1\nplugins:\n  files:\n    ${path}: { content: ${JSON.stringify(content)}, mode: "0644" }\n`,
      tmp(),
      `${name}.yaml`,
    );
  /** every host reports fragment `f` refused for a reason matching `why`, and not converged */
  const refusedEverywhere = (f: string, why: RegExp) =>
    until(
      async () => {
        const rs = await status();
        return rs.length === HOSTS.length &&
          rs.every(
            (r) =>
              !r.converged &&
              r.refused.some((x) => x.fragment === f && why.test(x.reason)) &&
              r.error?.includes(`refused fragment "${f}"`),
          )
          ? rs
          : undefined;
      },
      `every host refusing ${f}`,
      90_000,
    );
  const convergedEverywhere = (what: string) =>
    until(
      async () => {
        const rs = await status();
        return rs.length === HOSTS.length && rs.every((r) => r.alive && r.converged && !r.refused.length)
          ? rs
          : undefined;
      },
      what,
      90_000,
    );

  beforeAll(async () => {
    cluster = await privateEtcdCluster('signed', 24720);
    root = etcdClient(cluster.endpoints);
    dir = tmp('opd-fleet-signed-');
    for (const k of ['op1', 'op2', 'rogue']) {
      const r = await opd(['fleet', 'keygen', '--out', key(k)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^key ed25519:[0-9a-f]{16}: private key in ${key(k)}, public key in`));
    }
    // what the operator installs on each host at enrollment, beside its credentials
    trusted = key('trusted.pub');
    copyFileSync(key('op1.pub'), trusted);
    for (const h of HOSTS)
      daemons.set(
        h,
        startFleetDaemon({
          endpoints: cluster.endpoints,
          host: h,
          dir: join(dir, h),
          labels: ['role=kvm'],
          args: ['--fleet-keys', trusted],
        }),
      );
    const put = await fleet([
      'put',
      fragment('base', '/etc/motd', 'signed\n'),
      '--selector',
      'role=kvm',
      '--sign-key',
      key('op1'),
    ]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toMatch(
      /stored fragment base \(role=kvm, order 100, document [0-9a-f]{12}, signed by ed25519:[0-9a-f]{16}\) for \d hosts?/,
    );
  });

  afterAll(async () => {
    for (const d of daemons.values()) await d.kill('SIGTERM');
    root?.close();
    await cluster?.down().catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies a fragment signed by the trusted operator key on every host', async () => {
    const rs = await convergedEverywhere('every host converged to the signed fragment');
    for (const r of rs) expect(r).toMatchObject({ verified: true, fragments: ['base'], refused: [] });
    for (const h of HOSTS) expect(readFileSync(file(h, 'etc/motd'), 'utf8')).toBe('signed\n');
    for (const h of HOSTS)
      expect(daemons.get(h)!.output()).toContain('fragments are verified against these operator keys');
  });

  it('refuses an unsigned fragment on every host, reports it in the status and never applies it', async () => {
    const put = await fleet(['put', fragment('unsigned', '/etc/unsigned', 'forged\n'), '--selector', 'role=kvm']);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toContain('unsigned) for 3 hosts');
    const rs = await refusedEverywhere('unsigned', /^unsigned$/);
    expect(rs[0].error).toContain('the last good document stays in force');
    const text = await fleet(['status']);
    for (const h of HOSTS) expect(text.stdout).toContain(`${h}: refused fragment "unsigned": unsigned`);
    await sleep(2_000); // a few of the daemons' runs (--poll 1) later, still nothing of it
    for (const h of HOSTS) {
      expect(existsSync(file(h, 'etc/unsigned')), h).toBe(false);
      expect(readFileSync(file(h, 'etc/motd'), 'utf8')).toBe('signed\n');
      expect(daemons.get(h)!.output()).toContain('fragments refused by the signature check');
    }
    // a host that starts while the unsigned fragment is stored: nothing of it either
    const late = `sigd-${id}`;
    const d = startFleetDaemon({
      endpoints: cluster.endpoints,
      host: late,
      dir: join(dir, late),
      labels: ['role=kvm'],
      args: ['--fleet-keys', trusted],
    });
    try {
      await until(async () => {
        const r = (await status()).find((x) => x.host === late);
        return r?.alive && !r.converged && r.refused.some((x) => x.fragment === 'unsigned') && r.document;
      }, 'the host started meanwhile refusing the unsigned fragment');
      expect(existsSync(join(d.dir, 'etc/unsigned'))).toBe(false);
    } finally {
      await d.kill('SIGTERM');
      await root.delete().prefix(`/opd/hosts/${late}/`);
      await root.delete().prefix(`/opd/desired/${late}/`);
    }
    const v = await fleet(['verify', '--keys', key('op1.pub')]);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain('fragment unsigned: REFUSED: unsigned');
    expect(v.stdout).toContain('fragment base: ok, signed by ed25519:');
    expect((await fleet(['delete', 'unsigned'])).code).toBe(0);
    await convergedEverywhere('every host converged again once the unsigned fragment was deleted');
  });

  it('refuses a fragment signed by an unknown key on every host and never applies it', async () => {
    const put = await fleet([
      'put',
      fragment('rogue', '/etc/rogue', 'rogue\n'),
      '--selector',
      'role=kvm',
      '--sign-key',
      key('rogue'),
    ]);
    expect(put.code, put.stderr).toBe(0);
    await refusedEverywhere('rogue', /^signed by ed25519:[0-9a-f]{16}, which is not a trusted operator key$/);
    await sleep(2_000);
    for (const h of HOSTS) expect(existsSync(file(h, 'etc/rogue')), h).toBe(false);
    expect((await fleet(['delete', 'rogue'])).code).toBe(0);
    await convergedEverywhere('every host converged again once the rogue fragment was deleted');
  });

  it('refuses a signed fragment changed in etcd after it was signed, on every host', async () => {
    // whoever can write etcd (a leaked credential, a compromised member) but holds no key
    const rec = JSON.parse((await root.get('/opd/fragments/base').string())!) as {
      document: { plugins: { files: { paths: Record<string, { content: string }> } } };
    };
    rec.document.plugins.files.paths['/etc/motd'].content = 'tampered\n';
    await root.put('/opd/fragments/base').value(JSON.stringify(rec));
    expect((await fleet(['sync'])).code).toBe(0);
    await refusedEverywhere('base', /^a bad signature \(claims ed25519:[0-9a-f]{16}\): the fragment was changed/);
    await sleep(2_000);
    for (const h of HOSTS) expect(readFileSync(file(h, 'etc/motd'), 'utf8')).toBe('signed\n');
    const v = await fleet(['verify', '--keys', key('op1.pub')]);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain('fragment base: REFUSED: a bad signature');
    for (const h of HOSTS) expect(v.stdout).toContain(`copy ${h}/base: REFUSED: a bad signature`);
    const again = await fleet([
      'put',
      fragment('base', '/etc/motd', 'signed\n'),
      '--selector',
      'role=kvm',
      '--sign-key',
      key('op1'),
    ]);
    expect(again.code, again.stderr).toBe(0);
    await convergedEverywhere('every host converged again to the re-signed fragment');
  });

  it('rotates the operator key with an overlap: both trusted, fragments re-signed, then the old key dropped', async () => {
    // 1. the hosts trust both keys
    writeFileSync(trusted, readFileSync(key('op1.pub'), 'utf8') + readFileSync(key('op2.pub'), 'utf8'));
    // 2. every stored fragment re-signed with the new key (checked against the keys trusted now)
    const both = key('both.pub');
    copyFileSync(trusted, both);
    const rs = await fleet(['resign', '--keys', both, '--sign-key', key('op2')]);
    expect(rs.code, rs.stderr).toBe(0);
    expect(rs.stdout).toMatch(/^re-signed 1 fragment with ed25519:[0-9a-f]{16}; updated the copies of [0-3] hosts?$/);
    const v = await fleet(['verify', '--keys', key('op2.pub')]);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain('1 fragment and 3 host copies checked: all signed by trusted keys');
    await convergedEverywhere('every host converged to the re-signed fragment');
    // 3. the old key dropped: what it signs now is refused, what the new one signs applied
    copyFileSync(key('op2.pub'), trusted);
    expect(
      (
        await fleet([
          'put',
          fragment('old-key', '/etc/old-key', 'x\n'),
          '--selector',
          'role=kvm',
          '--sign-key',
          key('op1'),
        ])
      ).code,
    ).toBe(0);
    await refusedEverywhere('old-key', /which is not a trusted operator key/);
    expect((await fleet(['delete', 'old-key'])).code).toBe(0);
    expect(
      (
        await fleet([
          'put',
          fragment('new-key', '/etc/new-key', 'y\n'),
          '--selector',
          'role=kvm',
          '--sign-key',
          key('op2'),
        ])
      ).code,
    ).toBe(0);
    await convergedEverywhere('every host converged to the fragment the new key signed');
    for (const h of HOSTS) {
      expect(readFileSync(file(h, 'etc/new-key'), 'utf8')).toBe('y\n');
      expect(existsSync(file(h, 'etc/old-key'))).toBe(false);
    }
  });

  it('refuses to re-sign when a stored fragment fails the check, and a daemon with an unreadable key file does not start', async () => {
    await root.put('/opd/fragments/planted').value(
      JSON.stringify({
        id: 'planted',
        order: 1,
        selector: { host: 'nobody' },
        document: { version: 1, plugins: {} },
        hash: 'x',
        put_at: '',
      }),
    );
    const r = await fleet(['resign', '--keys', key('op2.pub'), '--sign-key', key('op2')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('opd: fragment planted: unsigned');
    expect(r.stderr).toContain('nothing re-signed');
    await root.delete().key('/opd/fragments/planted');
    const bad = key('bad.pub');
    writeFileSync(bad, 'not a key\n');
    const d = await opd(
      [
        'daemon',
        '--etcd',
        cluster.endpoints,
        '--host',
        `bad-${id}`,
        '--fleet-keys',
        bad,
        '--root',
        tmp(),
        '--audit-log',
        join(tmp(), 'audit.jsonl'),
        '--no-dbus',
      ],
      {
        timeout: 30_000,
      },
    );
    expect(d.code).toBe(64);
    expect(d.stderr).toContain(`--fleet-keys ${bad} holds no PEM public key`);
  });
});
