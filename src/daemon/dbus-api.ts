/**
 * The daemon's D-Bus API on the system bus, through src/dbus.ts:
 *   org.opd.Reconciler1 at /org/opd/Reconciler1, interface org.opd.Reconciler1:
 *     Apply() → s (run summary JSON; runs now, waits for the run)
 *     Diff() → s (plan JSON against the document in force; changes nothing)
 *     Status() → s (per-resource outcome, last run, failing resources)
 *     signals DriftDetected(s), RunFinished(s)
 *   op-dbus compatibility: org.opdbus at /org/opdbus/state, interface org.opdbus.StateManager:
 *     ApplyState(s json) → s (applies that document once, like `opd apply`), QueryState() → s
 * Who may own the names and call Apply/ApplyState is decided by the bus policy
 * (packaging/dbus/org.opd.Reconciler1.conf: root only).
 */
import { exportService, type ExportedService } from '../dbus.js';
import { parseText } from '../core/document.js';
import { prepareLoaded } from '../core/engine.js';
import { run as engineRun } from '../run/index.js';
import { reportJSON } from '../core/report.js';
import { canonical } from '../core/canonical.js';
import type { Daemon } from './loop.js';
import { TUNABLES } from '../core/tunables.js';

export const BUS_NAME = 'org.opd.Reconciler1';
export const OBJECT_PATH = '/org/opd/Reconciler1';
export const INTERFACE = 'org.opd.Reconciler1';
export const OPDBUS_NAME = 'org.opdbus';
export const OPDBUS_PATH = '/org/opdbus/state';
export const OPDBUS_INTERFACE = 'org.opdbus.StateManager';

export async function startDbusApi(daemon: Daemon): Promise<ExportedService> {
  const o = daemon.o;
  const svc = await exportService(
    o.settings,
    [BUS_NAME, OPDBUS_NAME],
    [
      {
        path: OBJECT_PATH,
        interface: INTERFACE,
        methods: {
          Apply: { in: '', out: 's', fn: async () => JSON.stringify(await daemon.request('dbus:Apply')) },
          Diff: { in: '', out: 's', fn: async () => JSON.stringify(await daemon.diff()) },
          Status: { in: '', out: 's', fn: () => JSON.stringify(daemon.status()) },
        },
        signals: { DriftDetected: 's', RunFinished: 's' },
      },
      {
        path: OPDBUS_PATH,
        interface: OPDBUS_INTERFACE,
        methods: {
          ApplyState: {
            in: 's',
            out: 's',
            fn: async (json: string) => {
              const prep = await prepareLoaded(o.registry, parseText(json, 'ApplyState(json)'));
              const report = await engineRun(prep, {
                settings: o.settings,
                log: o.log,
                allowDestroy: o.allowDestroy,
                rollback: o.rollback,
                auditLog: o.auditLog,
                auditKey: o.auditKey,
                lockWaitMs: TUNABLES.daemonLockWaitMs,
                trigger: 'dbus:ApplyState',
              });
              return JSON.stringify(reportJSON(report, prep.redactor));
            },
          },
          QueryState: {
            in: '',
            out: 's',
            fn: async () => {
              const plugins: Record<string, unknown> = {};
              for (const [name, p] of [...daemon.prep.plugins].sort(([a], [b]) => (a < b ? -1 : 1))) {
                const ctx = { settings: o.settings, log: o.log };
                // through the document's redactor, as `opd show` prints it: no secret value leaves
                plugins[name] = daemon.prep.redactor.section(
                  name,
                  p.show ? await p.show(ctx, { all: false }) : await p.read(ctx, daemon.prep.doc.plugins[name]),
                );
              }
              return canonical({ version: 1, plugins });
            },
          },
        },
      },
    ],
  );
  daemon.on('drift', (s) =>
    svc.emit(OBJECT_PATH, INTERFACE, 'DriftDetected', JSON.stringify({ run: s.run, resources: s.drift, at: s.at })),
  );
  daemon.on('run', (s) => svc.emit(OBJECT_PATH, INTERFACE, 'RunFinished', JSON.stringify(s)));
  return svc;
}
