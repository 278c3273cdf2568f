/**
 * The daemon's D-Bus API on the system bus, through src/dbus.ts:
 *   org.opd.Reconciler1 at /org/opd/Reconciler1, interface org.opd.Reconciler1:
 *     Apply() → s (run summary JSON; runs now, waits for the run)                    root only
 *     Diff() → s (plan JSON against the document in force; changes nothing)          root or polkit
 *     Status() → s (per-resource outcome, last run, failing resources)               anyone
 *     signals DriftDetected(s), RunFinished(s)
 *   op-dbus compatibility: org.opdbus at /org/opdbus/state, interface org.opdbus.StateManager:
 *     ApplyState(s json) → s (applies that document once, like `opd apply`)         root only
 *     QueryState() → s (the host's current state in the document's schema)         root or polkit
 *
 * Who may call what is decided here, per call, from the sender the bus stamped on the message
 * (its uid from the bus, then polkit's CheckAuthorization for `org.opd.reconciler1.read`); the
 * bus policy (packaging/dbus/org.opd.Reconciler1.conf) filters first: non-root callers never reach
 * Apply/ApplyState at all. Every answer and signal passes the document's redactor, exactly like
 * `opd show` / `opd diff` output: secret fields and secret values are masked. Reading methods make
 * root read the host (guards, backends): they run one at a time and at most once per
 * TUNABLES.dbusReadIntervalMs; callers arriving meanwhile share the answer.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { callRead, exportService, variant, type Caller, type ExportedService, type ServiceObject } from '../dbus.js';
import { parseText } from '../core/document.js';
import { prepareLoaded } from '../core/engine.js';
import { run as engineRun } from '../run/index.js';
import { reportJSON } from '../core/report.js';
import { canonical } from '../core/canonical.js';
import { OpdError } from '../core/errors.js';
import type { Redactor } from '../core/secrets.js';
import type { Settings } from '../core/plugin.js';
import type { Daemon } from './loop.js';
import { TUNABLES } from '../core/tunables.js';

export const BUS_NAME = 'org.opd.Reconciler1';
export const OBJECT_PATH = '/org/opd/Reconciler1';
export const INTERFACE = 'org.opd.Reconciler1';
export const OPDBUS_NAME = 'org.opdbus';
export const OPDBUS_PATH = '/org/opdbus/state';
export const OPDBUS_INTERFACE = 'org.opdbus.StateManager';
/** The polkit action that lets a non-root caller read state (packaging/polkit/org.opd.reconciler1.policy). */
export const READ_ACTION = 'org.opd.reconciler1.read';

/** The caller's uid, as the bus knows it (SO_PEERCRED when it connected). */
export async function callerUid(settings: Settings, sender: string): Promise<number> {
  const [uid] = await callRead(settings, {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'GetConnectionUnixUser',
    signature: 's',
    body: [sender],
  });
  return Number(uid);
}

/** polkit's answer for `action` and the caller's bus name (the subject polkit itself inspects). */
export async function polkitAllows(settings: Settings, caller: Caller, action: string): Promise<boolean> {
  const [res] = (await callRead(settings, {
    destination: 'org.freedesktop.PolicyKit1',
    path: '/org/freedesktop/PolicyKit1/Authority',
    interface: 'org.freedesktop.PolicyKit1.Authority',
    member: 'CheckAuthorization',
    signature: '(sa{sv})sa{ss}us',
    // flags 1: AllowUserInteraction (an agent may ask the caller for an admin password)
    body: [
      ['system-bus-name', { name: await variant('s', caller.sender) }],
      action,
      {},
      caller.interactive ? 1 : 0,
      '',
    ],
    timeout: TUNABLES.daemonCallMs,
  })) as [[boolean, boolean, Record<string, string>]];
  return res?.[0] === true;
}

/**
 * Root may; another caller only when polkit authorizes `org.opd.reconciler1.read`. No polkit on
 * the bus (or it fails): only root.
 */
async function authorizeRead(settings: Settings, caller: Caller, what: string): Promise<void> {
  if ((await callerUid(settings, caller.sender)) === 0) return;
  let allowed = false;
  let why = '';
  try {
    allowed = await polkitAllows(settings, caller, READ_ACTION);
  } catch (err) {
    why = `; polkit could not be asked (${(err as Error).message})`;
  }
  if (!allowed)
    throw new OpdError(
      'permission',
      `${what} reads the host's state: it is for root or callers polkit authorizes${why}`,
      {
        hint: `run it as root, or grant the polkit action ${READ_ACTION} (default: administrators, after authentication)`,
      },
    );
}

async function requireRoot(settings: Settings, caller: Caller, what: string): Promise<void> {
  if ((await callerUid(settings, caller.sender)) !== 0)
    throw new OpdError('permission', `${what} changes the host: it is for root only`, { hint: 'run it as root' });
}

/** Every string inside `v` through the redactor's text masking (error texts, summaries, addresses). */
export function redactDeep<T>(v: T, r: Redactor): T {
  if (typeof v === 'string') return r.text(v) as T;
  if (Array.isArray(v)) return v.map((x) => redactDeep(x, r)) as T;
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactDeep(x, r)])) as T;
  return v;
}

/**
 * Reads of the host for D-Bus callers: one at a time, starts at least `intervalMs` apart; a call
 * for a read that is already queued or running shares its answer.
 */
export class ReadGate {
  private last = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly pending = new Map<string, Promise<string>>();
  constructor(private readonly intervalMs: number) {}

  run(key: string, fn: () => Promise<string>): Promise<string> {
    const shared = this.pending.get(key);
    if (shared) return shared;
    const p = this.queue.then(async () => {
      const wait = this.last + this.intervalMs - Date.now();
      if (wait > 0) await sleep(wait);
      this.last = Date.now();
      try {
        return await fn();
      } finally {
        this.pending.delete(key);
      }
    });
    this.pending.set(key, p);
    this.queue = p.catch(() => undefined);
    return p;
  }
}

/** What each method and signal does, for opd-daemon(8) and docs/daemon.md (a test checks every member has one). */
export const API_DOCS: Record<string, string> = {
  'org.opd.Reconciler1.Apply':
    'reconcile now (as SIGHUP does, but waiting for the run); returns the run summary as JSON; root only',
  'org.opd.Reconciler1.Diff':
    'the plan against the document in force, as JSON, redacted; changes nothing; root or callers polkit allows org.opd.reconciler1.read, one read at a time',
  'org.opd.Reconciler1.Status':
    'per-resource outcome, the last run, failing resources with their next attempt, a rejected document; as JSON (what opd status prints)',
  'org.opd.Reconciler1.DriftDetected': 'a run found resources changed outside opd: {run, resources, at} as JSON',
  'org.opd.Reconciler1.RunFinished': 'a run ended: its summary as JSON',
  'org.opdbus.StateManager.ApplyState':
    "op-dbus's method: apply the document given as JSON once, like opd apply; returns the report as JSON; root only",
  'org.opdbus.StateManager.QueryState':
    "op-dbus's method: the current state of the daemon's plugins as a document (JSON), redacted; root or callers polkit allows org.opd.reconciler1.read",
};

/** The objects the daemon exports on the system bus (methods bound to `daemon`). */
export function apiObjects(daemon: Daemon): ServiceObject[] {
  const o = daemon.o;
  const gate = new ReadGate(TUNABLES.dbusReadIntervalMs);
  // the document in force when the call is answered (a reload may replace it)
  const red = () => daemon.prep.redactor;
  return [
    {
      path: OBJECT_PATH,
      interface: INTERFACE,
      methods: {
        Apply: {
          in: '',
          out: 's',
          fn: async (caller: Caller) => {
            await requireRoot(o.settings, caller, 'Apply');
            return JSON.stringify(redactDeep(await daemon.request('dbus:Apply'), red()));
          },
        },
        Diff: {
          in: '',
          out: 's',
          fn: async (caller: Caller) => {
            await authorizeRead(o.settings, caller, 'Diff');
            return gate.run('Diff', async () => JSON.stringify(redactDeep(await daemon.diff(), red())));
          },
        },
        Status: { in: '', out: 's', fn: () => JSON.stringify(redactDeep(daemon.status(), red())) },
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
          fn: async (json: string, caller: Caller) => {
            await requireRoot(o.settings, caller, 'ApplyState');
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
            return JSON.stringify(redactDeep(reportJSON(report, prep.redactor), prep.redactor));
          },
        },
        QueryState: {
          in: '',
          out: 's',
          fn: async (caller: Caller) => {
            await authorizeRead(o.settings, caller, 'QueryState');
            return gate.run('QueryState', async () => {
              const prep = daemon.prep;
              const plugins: Record<string, unknown> = {};
              for (const [name, p] of [...prep.plugins].sort(([a], [b]) => (a < b ? -1 : 1))) {
                const ctx = { settings: o.settings, log: o.log };
                const state = p.show ? await p.show(ctx, { all: false }) : await p.read(ctx, prep.doc.plugins[name]);
                // exactly like `opd show`: the section through the document's redactor
                plugins[name] = prep.redactor.section(name, state);
              }
              return canonical({ version: 1, plugins });
            });
          },
        },
      },
    },
  ];
}

export async function startDbusApi(daemon: Daemon): Promise<ExportedService> {
  const svc = await exportService(daemon.o.settings, [BUS_NAME, OPDBUS_NAME], apiObjects(daemon));
  const red = () => daemon.prep.redactor;
  daemon.on('drift', (s) =>
    svc.emit(
      OBJECT_PATH,
      INTERFACE,
      'DriftDetected',
      JSON.stringify(redactDeep({ run: s.run, resources: s.drift, at: s.at }, red())),
    ),
  );
  daemon.on('run', (s) => svc.emit(OBJECT_PATH, INTERFACE, 'RunFinished', JSON.stringify(redactDeep(s, red()))));
  return svc;
}
