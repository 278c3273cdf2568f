/**
 * Stopping `opd daemon` the way systemd does (`systemctl stop`: SIGTERM to the main process,
 * the shipped unit's KillMode=mixed) in the middle of a repair of 500 drifted files: the unit
 * stops with its expected status (exit 0), the repair run ends with run.end `interrupted:
 * SIGTERM`, every file repaired on the host has its change entry, and the next start finds
 * nothing to recover (no intent without an outcome) and repairs the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { opd, tmp } from '../helpers/opd.js';
import { auditEntries, daemonUnit, until, type DaemonUnit } from '../helpers/daemon.js';

const N = 500;
const file = (i: number) => `/etc/opd-repair/f${String(i).padStart(3, '0')}.conf`;
const want = (i: number) => `repaired state ${i}\n`;

describe('opd daemon stopped during a repair', () => {
  let unit: DaemonUnit;
  let dir: string;
  let root: string;
  let audit: string;

  beforeAll(async () => {
    dir = tmp('opd-daemon-stop-');
    root = join(dir, 'root');
    mkdirSync(root);
    audit = join(dir, 'audit.jsonl');
    const paths: Record<string, unknown> = { '/etc/opd-repair': { type: 'directory', mode: '0755' } };
    for (let i = 0; i < N; i++) paths[file(i)] = { content: want(i), mode: '0644' };
    const state = join(dir, 'state.json');
    writeFileSync(state, JSON.stringify({ version: 1, plugins: { files: { paths } } }));
    // polled every second (--no-watch): the drift of all 500 files is found by one run, which
    // the stop then lands in (the files plugin's inotify source would start a run at the first
    // file written; the event source has its own test, test/integration/daemon-watch.test.ts)
    unit = await daemonUnit({
      state,
      dir,
      env: { OPD_ROOT: root, OPD_AUDIT_LOG: audit, OPD_LOG_LEVEL: 'info' },
      args: ['--no-watch', '--poll', '1', '--debounce', '50', '--no-dbus'],
    });
    await unit.start();
  });

  afterAll(async () => {
    await unit?.remove();
  });

  it('ends the repair run cleanly with every repaired file on the record, and recovers nothing at the next start', async () => {
    const host = (i: number) => readFileSync(join(root, file(i)), 'utf8');
    expect(host(0)).toBe(want(0));
    // drift: every file changed outside opd; the repair has begun once the first file is back,
    // and the unit is stopped then as systemd does. On a loaded machine the whole repair may be
    // done before the stop lands (the run then ends ok): the unit is started again and the drift
    // made anew, at most 5 times
    let seen = 0;
    let repair: ReturnType<typeof auditEntries>[number] | undefined;
    for (let attempt = 0; ; attempt++) {
      seen = auditEntries(audit).length;
      for (let i = 0; i < N; i++) writeFileSync(join(root, file(i)), `drifted ${attempt} ${i}\n`);
      await until(() => host(0) === want(0), 'the repair to begin', 60_000);
      await unit.stop();
      const after = auditEntries(audit).slice(seen);
      repair = after.find((e) => e.type === 'run.start' && e.trigger === 'drift');
      expect(repair, JSON.stringify(after.slice(0, 3))).toBeDefined();
      const ended = after.find((e) => e.type === 'run.end' && e.run === repair!.run);
      if (ended?.interrupted || attempt === 4) break;
      await unit.start();
    }
    const p = await unit.show(['ActiveState', 'Result', 'ExecMainStatus']);
    expect(p).toMatchObject({ ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' });

    const repaired = Array.from({ length: N }, (_, i) => i).filter((i) => host(i) === want(i));
    const entries = auditEntries(audit).slice(seen);
    const mine = entries.filter((e) => e.run === repair!.run);
    // the drift the repair saw: all N, or fewer when a poll came while the test was still writing
    const drifted = mine.filter((e) => e.type === 'drift').length;
    expect(drifted).toBeGreaterThan(0);
    expect(drifted).toBeLessThanOrEqual(N);
    const end = mine.find((e) => e.type === 'run.end');
    expect(end).toMatchObject({ status: 'interrupted', interrupted: 'SIGTERM' });
    // stopped inside the wave: some repaired, some not started
    expect(repaired.length).toBeGreaterThan(0);
    expect(repaired.length).toBeLessThan(N);
    const ok = new Set(mine.filter((e) => e.type === 'change' && e.result === 'ok').map((e) => e.address));
    expect(repaired.filter((i) => !ok.has(`files/paths/${file(i)}`))).toEqual([]);
    expect(ok.size).toBe(repaired.length);
    // what the run planned (every file still drifted when it planned) was applied or not started
    const planned = ok.size + Number(end!.not_started);
    expect(planned).toBeGreaterThanOrEqual(drifted);
    expect(planned).toBeLessThanOrEqual(N);
    if (drifted === N) expect(end!.not_started).toBe(N - repaired.length);
    const v = await opd(['audit', 'verify'], { env: { OPD_AUDIT_LOG: audit } });
    expect(v.code, v.stdout + v.stderr).toBe(0);

    // the next start: nothing in flight to recover, the rest repaired
    const before = auditEntries(audit).length;
    await unit.start();
    await until(() => Array.from({ length: N }, (_, i) => i).every((i) => host(i) === want(i)), 'the rest repaired');
    const next = auditEntries(audit).slice(before);
    expect(next.filter((e) => e.type === 'recovered' || e.type === 'run.interrupted')).toEqual([]);
    const redone = new Set(next.filter((e) => e.type === 'change' && e.result === 'ok').map((e) => e.address));
    expect(redone.size).toBe(N - repaired.length);
    for (const i of repaired) expect(redone.has(`files/paths/${file(i)}`)).toBe(false);
  });
});
