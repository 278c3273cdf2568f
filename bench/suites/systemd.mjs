/**
 * systemd: no-op diff time and D-Bus calls for N = 10, 100, 500 units (each with a unit file,
 * enabled, active: Type=oneshot + RemainAfterExit, so no processes linger). The units are
 * created by opd itself in /etc/systemd/system/opd-bench-<id>-*.service and removed after.
 * Needs the namespaced systemd up (scripts/backends/systemd.sh up) and root.
 */
import { mkdtempSync, writeFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dist = (p) => import(join(ROOT, 'dist', p));

export async function run() {
  const { prepareFile: prepareWith, computePlan } = await dist('core/engine.js');
  const { run: runPlan } = await dist('run/index.js');
  const { registry } = await dist('plugins/index.js');
  const prepareFile = (file) => prepareWith(registry, file);
  const { dbusStats, resetDbusStats, closeBuses } = await dist('dbus.js');
  const { execStats, resetExecStats } = await dist('exec.js');
  const { pino } = await import('pino');
  const log = pino({ level: 'silent' });
  const settings = {};
  const dir = mkdtempSync(join(tmpdir(), 'opd-bench-sd-'));
  const auditLog = join(dir, 'audit.jsonl');
  const id = Math.random().toString(36).slice(2, 7);
  const rows = [];
  const unitFile = (i) =>
    `[Unit]\nDescription=opd bench ${i}\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n`;
  const write = (name, units) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify({ version: 1, plugins: { systemd: { units } } }));
    return p;
  };
  let pendingAbsent; // the removal document of the size being measured, until it ran
  const names = (n) => Array.from({ length: n }, (_, i) => `opd-bench-${id}-${String(i).padStart(4, '0')}.service`);
  try {
    for (const n of [10, 100, 500]) {
      const list = names(n);
      const present = write(
        `present-${n}.json`,
        Object.fromEntries(list.map((u, i) => [u, { enabled: true, active_state: 'active', unit_file: unitFile(i) }])),
      );
      const absent = write(`absent-${n}.json`, Object.fromEntries(list.map((u) => [u, { state: 'absent' }])));
      pendingAbsent = absent;
      const prep = await prepareFile(present);
      resetDbusStats();
      let t = performance.now();
      const applied = await runPlan(prep, { settings, log, auditLog });
      const applyMs = performance.now() - t;
      const applyCalls = dbusStats();
      if (applied.status !== 'ok')
        throw new Error(
          `bench apply of ${n} units: ${applied.status}: ${applied.outcomes
            .filter((o) => o.status !== 'ok')
            .slice(0, 3)
            .map((o) => o.change.address + ' ' + o.error?.message)
            .join('; ')} ${JSON.stringify(applied.verification).slice(0, 300)}`,
        );
      // no-op diff, in process (after one warm-up read)
      await computePlan(prep, { settings, log });
      const times = [];
      let calls;
      for (let k = 0; k < 5; k++) {
        resetDbusStats();
        resetExecStats();
        t = performance.now();
        const c = await computePlan(prep, { settings, log });
        times.push(performance.now() - t);
        if (c.plan.changes.length) throw new Error(`no-op diff of ${n} units planned ${c.plan.changes.length} changes`);
        calls = dbusStats();
        if (execStats().spawned) throw new Error('a no-op diff spawned a process');
      }
      times.sort((a, b) => a - b);
      // the same units, the document naming only unit_file and active_state (no unit-file states needed)
      const lean = await prepareFile(
        write(
          `lean-${n}.json`,
          Object.fromEntries(list.map((u, i) => [u, { active_state: 'active', unit_file: unitFile(i) }])),
        ),
      );
      await computePlan(lean, { settings, log });
      const leanTimes = [];
      let leanCalls;
      for (let k = 0; k < 5; k++) {
        resetDbusStats();
        t = performance.now();
        const c = await computePlan(lean, { settings, log });
        leanTimes.push(performance.now() - t);
        if (c.plan.changes.length)
          throw new Error(`lean no-op diff of ${n} units planned ${c.plan.changes.length} changes`);
        leanCalls = dbusStats().calls;
      }
      leanTimes.sort((a, b) => a - b);
      // where a no-op read spends its time
      const bus = await dist('plugins/systemd/bus.js');
      const files = await dist('plugins/systemd/files.js');
      t = performance.now();
      await bus.listUnitsByNames(settings, list);
      const luMs = performance.now() - t;
      t = performance.now();
      await bus.unitFileStates(settings, list);
      const lfMs = performance.now() - t;
      t = performance.now();
      await Promise.all(list.map((u) => files.readUnitFiles('/etc/systemd/system', u)));
      const fsMs = performance.now() - t;
      // the CLI as a user runs it (node start-up included)
      t = performance.now();
      const cli = await execa('node', [join(ROOT, 'bin/opd.js'), 'diff', present], {
        reject: false,
        env: { OPD_AUDIT_LOG: auditLog },
      });
      const cliMs = performance.now() - t;
      if (cli.exitCode !== 0) throw new Error(`opd diff exit ${cli.exitCode}: ${cli.stderr}`);
      resetDbusStats();
      t = performance.now();
      const removed = await runPlan(await prepareFile(absent), { settings, log, auditLog });
      const removeMs = performance.now() - t;
      const removeCalls = dbusStats().calls;
      if (removed.status !== 'ok') throw new Error(`bench removal of ${n} units: ${removed.status}`);
      pendingAbsent = undefined;
      rows.push({
        units: n,
        noop_diff_ms_median: Math.round(times[2]),
        noop_diff_ms_min: Math.round(times[0]),
        noop_diff_dbus_calls: calls.calls,
        noop_diff_dbus_by_member: Object.entries(calls.byMember)
          .map(([k, v]) => `${k.replace('org.freedesktop.systemd1.Manager.', '')}=${v}`)
          .join(' '),
        noop_diff_ms_median_without_enabled: Math.round(leanTimes[2]),
        noop_diff_dbus_calls_without_enabled: leanCalls,
        read_ListUnitsByNames_ms: Math.round(luMs),
        read_ListUnitFilesByPatterns_ms: Math.round(lfMs),
        read_files_ms: Math.round(fsMs),
        cli_diff_ms: Math.round(cliMs),
        apply_create_ms: Math.round(applyMs),
        apply_create_dbus_calls: applyCalls.calls,
        apply_create_reloads: applyCalls.byMember['org.freedesktop.systemd1.Manager.Reload'] ?? 0,
        apply_remove_ms: Math.round(removeMs),
        apply_remove_dbus_calls: removeCalls,
      });
    }
  } finally {
    // a failed run: stop and remove what it started before deleting files
    if (pendingAbsent)
      await runPlan(await prepareFile(pendingAbsent), { settings, log, auditLog }).catch(() => undefined);
    // belt and braces: nothing of ours stays behind
    for (const d of [
      '/etc/systemd/system',
      '/etc/systemd/system/multi-user.target.wants',
      '/etc/systemd/system/.opd-managed',
    ])
      if (existsSync(d))
        for (const f of readdirSync(d))
          if (f.includes(`opd-bench-${id}-`)) rmSync(join(d, f), { recursive: true, force: true });
    await closeBuses();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    name: 'systemd',
    rows,
    notes:
      'no-op diff = read + diff + plan in process (median of 5 after a warm-up); D-Bus calls per no-op diff stay constant in N (ListUnitsByNames + ListUnitFilesByPatterns); cli_diff_ms includes node start-up. *_without_enabled: the document names only unit_file and active_state, so the unit-file states (ListUnitFilesByPatterns, which costs systemd a scan of every .wants/ directory per unit: quadratic in enabled units) are not asked for. apply creates N units (unit file, enabled, active oneshot) with one Manager.Reload.',
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await run();
  console.table(r.rows);
  console.log(r.notes);
}
