import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { actorOf, attributeFromLog, tailTransactions } from '../../../../src/plugins/ovs/attribute.js';

describe('OVS drift attribution from the database log', () => {
  it("reads ovs-vsctl's command line and the process that invoked it from a transaction comment", () => {
    expect(actorOf('ovs-vsctl (invoked by unplug.sh): ovs-vsctl --no-wait del-port br0 p0')).toEqual({
      command: 'ovs-vsctl --no-wait del-port br0 p0',
      parent: 'unplug.sh',
    });
    expect(actorOf('a comment of another client')).toEqual({ command: 'a comment of another client' });
  });

  it('takes the transactions at the end of a standalone database file and skips a cut first line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opd-attr-'));
    const f = join(dir, 'conf.db');
    writeFileSync(
      f,
      [
        'OVSDB JSON 10 0000',
        '{"name":"Open_vSwitch","tables":{}}',
        'OVSDB JSON 10 0000',
        '{"_date":1000,"_comment":"opd: 2 changes","Bridge":{}}',
        'OVSDB JSON 10 0000',
        '{"_date":2000,"_comment":"ovs-vsctl (invoked by bash): ovs-vsctl del-br br0"}',
        '',
      ].join('\n'),
    );
    const t = tailTransactions(f);
    expect(Array.isArray(t) && t.map((x) => x._date)).toEqual([1000, 2000]);
  });

  it('says why no actor is known for a database reached over tcp', () => {
    expect(attributeFromLog('tcp:127.0.0.1:6640', 0)).toEqual({
      source: 'unknown',
      reason: 'the database is reached over tcp: its file is not on this host',
    });
  });

  it('says why no actor is known when no ovsdb-server serves the socket and no database file is found', () => {
    // a transaction from the future only: none qualifies, whatever database this host has
    const a = attributeFromLog('unix:/nonexistent/opd-test/db.sock', Date.now() + 3_600_000);
    expect(a.source).toBe('unknown');
    // Debian's database, where openvswitch-switch is installed, is the last place looked at
    const debian = (() => {
      try {
        return readFileSync('/etc/openvswitch/conf.db').subarray(0, 5).toString() === 'OVSDB';
      } catch {
        return false;
      }
    })();
    expect(a.reason).toMatch(
      debian
        ? /^no transaction but opd's in the database log since /
        : /no ovsdb-server process serving \/nonexistent\/opd-test\/db.sock/,
    );
  });

  it('finds the database file beside the socket when its server is not visible (another pid namespace)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opd-attr-'));
    writeFileSync(
      join(dir, 'conf.db'),
      'OVSDB JSON 10 0000\n{"name":"Open_vSwitch"}\nOVSDB JSON 10 0000\n{"_date":5000,"_comment":"ovs-vsctl (invoked by fix.sh): ovs-vsctl del-br b"}\n',
    );
    expect(attributeFromLog(`unix:${dir}/db.sock`, 4500)).toEqual({
      source: 'ovsdb transaction comment',
      actor: { command: 'ovs-vsctl del-br b', parent: 'fix.sh' },
      at: new Date(5000).toISOString(),
    });
  });
});
