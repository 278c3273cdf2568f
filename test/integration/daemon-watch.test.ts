/**
 * The files plugin's event source (inotify on the directories of the named paths) and the
 * daemon's start without a fixed wait: `opd daemon` as a unit of the real namespaced systemd,
 * with polling and resync off, so that only the event source can find the drift.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../helpers/opd.js';
import { auditEntries, daemonUnit, until, type DaemonUnit } from '../helpers/daemon.js';

const N = 200;
const CONF = '/etc/opd-watch/app.conf';
const file = (i: number) => `/etc/opd-watch/many/f${String(i).padStart(3, '0')}.conf`;

describe('opd daemon with the files event source (no polling)', () => {
  let unit: DaemonUnit;
  let dir: string;
  let root: string;
  let audit: string;
  const host = (p: string) => join(root, p);
  const driftRuns = (from: number) =>
    auditEntries(audit)
      .slice(from)
      .filter((e) => e.type === 'run.start' && e.trigger === 'drift');

  beforeAll(async () => {
    dir = tmp('opd-daemon-watch-');
    root = join(dir, 'root');
    mkdirSync(root);
    audit = join(dir, 'audit.jsonl');
    const paths: Record<string, unknown> = {
      '/etc/opd-watch': { type: 'directory', mode: '0755' },
      '/etc/opd-watch/many': { type: 'directory', mode: '0755' },
      [CONF]: { content: 'listen = 1\n', mode: '0640' },
      // under a directory that does not exist until someone makes it: watched from /etc/opd-later's parent
      '/etc/opd-later/x.conf': { state: 'absent' },
    };
    for (let i = 0; i < N; i++) paths[file(i)] = { content: `want ${i}\n`, mode: '0644' };
    const state = join(dir, 'state.json');
    writeFileSync(state, JSON.stringify({ version: 1, plugins: { files: { paths } } }));
    unit = await daemonUnit({
      state,
      dir,
      env: { OPD_ROOT: root, OPD_AUDIT_LOG: audit, OPD_LOG_LEVEL: 'info' },
      args: ['--poll', '0', '--resync', '0', '--no-dbus'],
    });
    await unit.start();
  });

  afterAll(async () => {
    await unit?.remove();
  });

  it('repairs a file edited by hand, found by inotify (polling and resync off), and records the drift with what saw it', async () => {
    expect(readFileSync(host(CONF), 'utf8')).toBe('listen = 1\n');
    const seen = auditEntries(audit).length;
    writeFileSync(host(CONF), 'listen = 0\n');
    await until(() => readFileSync(host(CONF), 'utf8') === 'listen = 1\n', 'the file to be repaired', 30_000);
    const drift = await until(
      () =>
        auditEntries(audit)
          .slice(seen)
          .find((e) => e.type === 'drift' && e.address === `files/paths/${CONF}`),
      'the drift entry',
    );
    expect(JSON.stringify(drift.detected_by)).toContain(`watch:files:files/paths/${CONF}`);
  });

  it('repairs a removed file and a changed mode', async () => {
    rmSync(host(CONF));
    await until(() => {
      try {
        return readFileSync(host(CONF), 'utf8') === 'listen = 1\n';
      } catch {
        return false;
      }
    }, 'the removed file to come back');
    chmodSync(host(CONF), 0o666);
    await until(() => (statSync(host(CONF)).mode & 0o777) === 0o640, 'the mode to be repaired');
  });

  it('sees a path under a directory made after the daemon started', async () => {
    mkdirSync(host('/etc/opd-later'));
    // the watch moves down to the new directory: a file made there is then seen and removed
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(host('/etc/opd-later/x.conf'), 'not wanted\n');
    await until(() => {
      try {
        statSync(host('/etc/opd-later/x.conf'));
        return false;
      } catch {
        return true;
      }
    }, 'the unwanted file to be removed');
  });

  it(`repairs a burst of ${N} drifted files in at most two runs`, async () => {
    const seen = auditEntries(audit).length;
    // the burst as one operation (as \`rsync --delay-updates\` or a package manager makes one): the
    // drifted files are written aside, then the directory is swapped in with two renames
    const many = host('/etc/opd-watch/many');
    mkdirSync(`${many}.new`);
    for (let i = 0; i < N; i++) writeFileSync(`${many}.new/${file(i).split('/').pop()}`, `drifted ${i}\n`);
    renameSync(many, `${many}.old`);
    renameSync(`${many}.new`, many);
    rmSync(`${many}.old`, { recursive: true });
    await until(
      () => Array.from({ length: N }, (_, i) => i).every((i) => readFileSync(host(file(i)), 'utf8') === `want ${i}\n`),
      'every file repaired',
      60_000,
    );
    // the runs that repaired them: those with drift, after the burst
    const runs = driftRuns(seen);
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.length).toBeLessThanOrEqual(2);
    const repaired = new Set(
      auditEntries(audit)
        .slice(seen)
        .filter((e) => e.type === 'change' && e.result === 'ok')
        .map((e) => e.address),
    );
    // every file; and the directory too when a run looked between the two renames
    for (let i = 0; i < N; i++) expect(repaired.has(`files/paths/${file(i)}`)).toBe(true);
    expect([...repaired].filter((a) => !a.startsWith('files/paths//etc/opd-watch/many/'))).toEqual(
      repaired.size > N ? ['files/paths//etc/opd-watch/many'] : [],
    );
  });
});
