/**
 * Who made a drift (issue 29): `opd daemon` as a unit of the real namespaced systemd, against a
 * private ovsdb-server, names the actor of an OVS drift from the transaction's comment in the
 * database file (ovs-vsctl's command line and the process that ran it), and says `unknown` with
 * the reason where the host cannot tell (a file changed by hand: inotify says what, not who).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { opd, tmp, uniq } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';
import { auditEntries, daemonUnit, until, type DaemonUnit } from '../helpers/daemon.js';

const id = uniq(4);
const BR = `att${id}`;
const P1 = `atp${id}`;
const CONF = '/etc/opd-attr/app.conf';

describe('opd daemon names who made a drift', () => {
  let ovs: OvsSandbox;
  let unit: DaemonUnit;
  let dir: string;
  let root: string;
  let audit: string;

  beforeAll(async () => {
    ovs = await startOvs();
    dir = tmp('opd-daemon-attr-');
    root = join(dir, 'root');
    mkdirSync(root);
    audit = join(dir, 'audit.jsonl');
    const state = join(dir, 'state.json');
    writeFileSync(
      state,
      JSON.stringify({
        version: 1,
        plugins: {
          ovs: { bridges: { [BR]: { ports: { [P1]: { type: 'internal' } } } } },
          files: { paths: { [CONF]: { content: 'listen = 1\n', mode: '0644' } } },
        },
      }),
    );
    unit = await daemonUnit({
      state,
      dir,
      env: { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit, OPD_ROOT: root },
      args: ['--poll', '0', '--resync', '0', '--no-dbus'],
    });
    await unit.start();
  });

  afterAll(async () => {
    await unit?.remove();
    await ovs?.stop();
  });

  const driftOf = (address: string, from: number) =>
    until(
      () =>
        auditEntries(audit)
          .slice(from)
          .find((e) => e.type === 'drift' && e.address === address),
      `the drift entry of ${address}`,
    );

  it('names the command line and the process behind an OVS port deleted with ovs-vsctl from a script (the transaction comment)', async () => {
    const seen = auditEntries(audit).length;
    // a named script deletes the port, as an operator's tool would
    const script = join(dir, 'unplug-port.sh');
    writeFileSync(script, `#!/bin/sh\novs-vsctl --db=${ovs.db} --no-wait del-port ${BR} ${P1}\n`);
    chmodSync(script, 0o755);
    await execa(script, []);
    await until(async () => (await ovs.vsctl(['list-ports', BR])).includes(P1), 'the port to come back');
    const drift = await driftOf(`ovs/bridges/${BR}`, seen);
    // ovs-vsctl names its parent by its argv[0]: for a script run by its #! line, the interpreter
    expect(drift.attribution).toMatchObject({
      source: 'ovsdb transaction comment',
      actor: { parent: '/bin/sh' },
    });
    const a = drift.attribution as { actor: { command: string }; at: string };
    expect(a.actor.command).toContain(`del-port ${BR} ${P1}`);
    expect(Date.parse(a.at)).toBeGreaterThan(0);
    // opd audit log tells it in a line
    const log = await opd(['audit', 'log'], { env: { OPD_AUDIT_LOG: audit } });
    expect(log.stdout).toMatch(
      new RegExp(
        `ovs/bridges/${BR}: changed outside opd, by ovs-vsctl .*del-port ${BR} ${P1} \\(invoked by /bin/sh\\) \\[ovsdb transaction comment\\]`,
      ),
    );
  });

  it('says who is unknown, and why, for a file changed by hand (inotify reports no process)', async () => {
    const seen = auditEntries(audit).length;
    writeFileSync(join(root, CONF), 'listen = 0\n');
    await until(() => readFileSync(join(root, CONF), 'utf8') === 'listen = 1\n', 'the file to be repaired');
    const drift = await driftOf(`files/paths/${CONF}`, seen);
    expect(drift.attribution).toMatchObject({ source: 'unknown' });
    expect(String((drift.attribution as { reason: string }).reason)).toMatch(/what changed, not who/);
  });
});
