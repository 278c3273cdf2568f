/**
 * Backend faults: the backend dies mid-apply, the audit disk is full, ten applies start at
 * once. Each gives a clear error with its own exit code, the audit trail stays intact, and a
 * rerun converges.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, doc, opd, tmp } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';

/** Wait for a condition, polling; a generous deadline that fails loudly. */
async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Bytes or connections waiting unread on the server side of a unix socket path: the Recv-Q of
 * its listening socket (pending connections) plus that of its accepted ones (unread requests).
 */
async function unreadOn(path: string): Promise<number> {
  const out = String((await execa('ss', ['-xanH'])).stdout);
  let n = 0;
  for (const l of out.split('\n')) {
    const f = l.trim().split(/\s+/);
    // Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port
    if (f[4] === path) n += Number(f[2]) || 0;
  }
  return n;
}

function bigDoc(prefix: string, bridges = 8, ports = 60): string {
  const b: Record<string, unknown> = {};
  for (let i = 0; i < bridges; i++) {
    const p: Record<string, unknown> = {};
    for (let j = 0; j < ports; j++) p[`${prefix}${i}p${j}`] = { type: 'internal', tag: j + 1 };
    b[`${prefix}br${i}`] = { ports: p };
  }
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges: b } } });
}

describe('backend faults', () => {
  let ovs: OvsSandbox;
  beforeAll(async () => {
    ovs = await startOvs();
  });
  afterAll(async () => {
    await ovs?.stop();
  });

  it('reports an ovsdb-server killed while the apply transaction is in flight with exit 1, keeps the audit intact, and converges after a restart', async () => {
    const dir = tmp();
    const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };
    const file = doc(bigDoc('f'), dir);
    const pid = Number(readFileSync(join(ovs.dir, 'ovsdb-server.pid'), 'utf8'));
    const sock = join(ovs.dir, 'db.sock');
    const child = execa('node', [OPD, 'apply', file], { env, reject: false });
    try {
      // the reads are done once run.start is in the trail; then freeze the server so that the
      // apply's transaction waits, unanswered, on its socket
      await waitFor(
        () => existsSync(env.OPD_AUDIT_LOG) && readFileSync(env.OPD_AUDIT_LOG, 'utf8').includes('"type":"run.start"'),
        'run.start in the audit trail',
      );
      process.kill(pid, 'SIGSTOP');
      await waitFor(async () => (await unreadOn(sock)) > 0, 'the apply transaction queued on the frozen ovsdb-server');
    } finally {
      process.kill(pid, 'SIGKILL');
    }
    const r = await child;
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr + r.stdout).toMatch(/OVS database|ovs-vsctl|ovsdb/i);
    expect(r.stderr).not.toMatch(/\s+at .*\.js:\d+/);
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
    // bring the same database back up and converge
    await execa(
      'ovsdb-server',
      [
        join(ovs.dir, 'conf.db'),
        `--remote=punix:${ovs.dir}/db.sock`,
        `--pidfile=${ovs.dir}/ovsdb-server.pid`,
        `--log-file=${ovs.dir}/ovsdb-server.log`,
        '--detach',
      ],
      {
        env: { OVS_RUNDIR: ovs.dir, OVS_LOGDIR: ovs.dir, OVS_DBDIR: ovs.dir },
      },
    );
    const again = await opd(['apply', file], { env });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect((await opd(['diff', file], { env })).code).toBe(0);
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });

  it('refuses to start with exit 74 when the audit disk is full, changing nothing, and converges once there is room', async () => {
    const mnt = tmp('opd-full-');
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    try {
      const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(mnt, 'audit', 'audit.jsonl') };
      const file = doc(bigDoc('d', 2, 5));
      mkdirSync(join(mnt, 'audit'));
      writeFileSync(join(mnt, 'filler'), Buffer.alloc(200 * 1024));
      const before = await ovs.dump();
      const r = await opd(['apply', file], { env });
      expect(r.code, r.stdout + r.stderr).toBe(74);
      expect(r.stderr).toMatch(/not enough free space for the audit trail/);
      expect(r.stderr).toMatch(/nothing was applied/);
      expect(await ovs.dump()).toBe(before);
      await execa('rm', [join(mnt, 'filler')]);
      const ok = await opd(['apply', file], { env });
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
    } finally {
      await execa('umount', [mnt], { reject: false });
    }
  });

  it('says plainly with exit 69 when the system bus is gone, touching nothing', async () => {
    const env = {
      OPD_AUDIT_LOG: join(tmp(), 'audit.jsonl'),
      DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/opd-bus',
    };
    const file = doc(
      'version: 1\nplugins:\n  systemd:\n    units:\n      opd-fault-x.service: { active_state: active }\n',
    );
    for (const cmd of ['diff', 'apply']) {
      const r = await opd([cmd, file], { env });
      expect(r.code, r.stderr).toBe(69);
      expect(r.stderr).toMatch(/no D-Bus system bus at unix:path=\/nonexistent\/opd-bus/);
      expect(r.stderr).toMatch(/hint: /);
      expect(r.stderr).not.toMatch(/\s+at .*\.js:\d+/);
    }
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });

  it('says plainly with exit 69 when libvirtd is not running', async () => {
    const env = {
      OPD_AUDIT_LOG: join(tmp(), 'audit.jsonl'),
      OPD_LIBVIRT_URI: 'qemu:///system?socket=/nonexistent/libvirt-sock',
    };
    const file = doc(
      'version: 1\nplugins:\n  libvirt:\n    networks:\n      opd-fault-net: { forward: nat, ip: { address: 10.77.0.1, prefix: 24 } }\n',
    );
    const r = await opd(['apply', file], { env });
    expect(r.code, r.stdout + r.stderr).toBe(69);
    expect(r.stderr).toMatch(/libvirt/);
    expect(r.stderr).toMatch(/hint: /);
    expect(r.stderr).not.toMatch(/\s+at .*\.js:\d+/);
  });

  it('serializes ten applies started at once into ten whole runs', { timeout: 900_000 }, async () => {
    const dir = tmp();
    const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };
    const files = Array.from({ length: 10 }, (_, i) => doc(bigDoc(`c${i}x`, 1, 5), dir, `c${i}.json`));
    const rs = await Promise.all(files.map((f) => opd(['apply', f], { env })));
    expect(rs.map((r) => r.code)).toEqual(Array(10).fill(0));
    const entries = readFileSync(env.OPD_AUDIT_LOG, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const order = entries.map((e) => e.run);
    const blocks = order.filter((r, i) => i === 0 || r !== order[i - 1]);
    expect(blocks).toHaveLength(10);
    expect(new Set(blocks).size).toBe(10);
    for (const run of new Set(order)) {
      const types = entries.filter((e) => e.run === run).map((e) => e.type);
      expect(types[0]).toBe('run.start');
      expect(types[types.length - 1]).toBe('run.end');
    }
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
