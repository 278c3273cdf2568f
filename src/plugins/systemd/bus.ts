/**
 * org.freedesktop.systemd1 over the system bus (through src/dbus.ts, the only door to D-Bus).
 * Reads are batched: one ListUnitsByNames for every named unit, one ListUnitFilesByPatterns
 * for their unit-file states (fresh from disk, unlike the cached UnitFileState property).
 */
import { callMutate, callRead, onSignal } from '../../dbus.js';
import { OpdError, abortedError } from '../../core/errors.js';
import { TUNABLES } from './manifest.js';
import type { ApplyContext, Settings } from '../../core/plugin.js';
import { exactPattern } from './names.js';

export const DEST = 'org.freedesktop.systemd1';
export const PATH = '/org/freedesktop/systemd1';
export const MANAGER = 'org.freedesktop.systemd1.Manager';

export interface UnitInfo {
  name: string;
  description: string;
  loadState: string;
  activeState: string;
  subState: string;
  path: string;
}

/** A call of a Manager method: member, signature, body and timeout (ms). */
type ManagerCall = [member: string, signature?: string, body?: unknown[], timeout?: number];

function message(...[member, signature = '', body = [], timeout]: ManagerCall) {
  return { destination: DEST, path: PATH, interface: MANAGER, member, signature, body, timeout };
}

/** A Manager method that only looks (ListUnits, GetUnitFileState, Subscribe): the read door. */
function manager(settings: Settings, ...call: ManagerCall): Promise<unknown[]> {
  return callRead(settings, message(...call)).catch((err) => {
    throw explain(err, call[0]);
  });
}

/** A Manager method that changes the host (EnableUnitFiles, StartUnit, Reload…): the mutate door, an apply only. */
function managerMutate(ctx: ApplyContext, ...call: ManagerCall): Promise<unknown[]> {
  return callMutate(ctx, message(...call)).catch((err) => {
    throw explain(err, call[0]);
  });
}

/** Say plainly when there is a bus but no systemd on it. */
function explain(err: unknown, member: string): unknown {
  if (err instanceof OpdError && err.kind === 'backend-unavailable' && !err.message.includes('systemd'))
    return new OpdError('backend-unavailable', `systemd is not reachable over D-Bus (${err.message})`, {
      hint: 'opd manages units through systemd (PID 1) on the system bus: boot with systemd, or set DBUS_SYSTEM_BUS_ADDRESS to a bus where org.freedesktop.systemd1 runs; `opd doctor` shows what is reachable',
    });
  if (err instanceof OpdError && err.kind === 'backend-unavailable') return err;
  void member;
  return err;
}

function toInfo(row: unknown[]): UnitInfo {
  return {
    name: row[0] as string,
    description: row[1] as string,
    loadState: row[2] as string,
    activeState: row[3] as string,
    subState: row[4] as string,
    path: row[6] as string,
  };
}

/** One call for all names (systemd loads units not yet loaded; templates are skipped). */
export async function listUnitsByNames(settings: Settings, names: string[]): Promise<Map<string, UnitInfo>> {
  const out = new Map<string, UnitInfo>();
  if (!names.length) return out;
  const [rows] = (await manager(settings, 'ListUnitsByNames', 'as', [names])) as [unknown[][]];
  for (const r of rows ?? []) {
    const u = toInfo(r);
    out.set(u.name, u);
  }
  return out;
}

export async function listUnits(settings: Settings): Promise<UnitInfo[]> {
  const [rows] = (await manager(settings, 'ListUnits')) as [unknown[][]];
  return (rows ?? []).map(toInfo);
}

export async function listUnitsByPatterns(
  settings: Settings,
  states: string[],
  patterns: string[],
): Promise<UnitInfo[]> {
  const [rows] = (await manager(settings, 'ListUnitsByPatterns', 'asas', [states, patterns])) as [unknown[][]];
  return (rows ?? []).map(toInfo);
}

/** unit name → unit-file state, for the names that have a unit file (one call). */
export async function unitFileStates(settings: Settings, names: string[] | undefined): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (names && !names.length) return out;
  const patterns = names ? names.map(exactPattern) : [];
  const [rows] = (await manager(settings, 'ListUnitFilesByPatterns', 'asas', [[], patterns])) as [[string, string][]];
  const wanted = names ? new Set(names) : undefined;
  // the same name may exist in several directories: the first in lookup order wins, which is
  // what systemd reports first; keep the first seen
  for (const [path, state] of rows ?? []) {
    const base = path.slice(path.lastIndexOf('/') + 1);
    if (wanted && !wanted.has(base)) continue;
    if (!out.has(base)) out.set(base, state);
  }
  return out;
}

/** For names ListUnitFiles cannot list (template instances): one call each. */
export async function unitFileState(settings: Settings, name: string): Promise<string | undefined> {
  try {
    const [s] = (await manager(settings, 'GetUnitFileState', 's', [name])) as [string];
    return s;
  } catch (err) {
    if (err instanceof OpdError && err.kind === 'backend-failed') return undefined; // no such unit file
    throw err;
  }
}

export async function managerInfo(settings: Settings): Promise<{ version: string; state: string }> {
  const [props] = (await callRead(settings, {
    destination: DEST,
    path: PATH,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'GetAll',
    signature: 's',
    body: [MANAGER],
  }).catch((e) => {
    throw explain(e, 'GetAll');
  })) as [Record<string, { value: unknown }>];
  return { version: String(props?.Version?.value ?? '?'), state: String(props?.SystemState?.value ?? '?') };
}

// ---- mutations: ApplyContext only ----

export type UnitFileChange = [type: string, file: string, dest: string];

export async function enableUnitFiles(
  _ctx: ApplyContext,
  names: string[],
): Promise<{ installInfo: boolean; changes: UnitFileChange[] }> {
  const [info, changes] = (await managerMutate(_ctx, 'EnableUnitFiles', 'asbb', [names, false, false])) as [
    boolean,
    UnitFileChange[],
  ];
  return { installInfo: info, changes };
}

export async function disableUnitFiles(ctx: ApplyContext, names: string[]): Promise<UnitFileChange[]> {
  const [changes] = (await managerMutate(ctx, 'DisableUnitFiles', 'asb', [names, false])) as [UnitFileChange[]];
  return changes;
}

export async function maskUnitFiles(ctx: ApplyContext, names: string[]): Promise<UnitFileChange[]> {
  const [changes] = (await managerMutate(ctx, 'MaskUnitFiles', 'asbb', [names, false, false])) as [UnitFileChange[]];
  return changes;
}

export async function unmaskUnitFiles(ctx: ApplyContext, names: string[]): Promise<UnitFileChange[]> {
  const [changes] = (await managerMutate(ctx, 'UnmaskUnitFiles', 'asb', [names, false])) as [UnitFileChange[]];
  return changes;
}

/** Manager.Reload (daemon-reload); the reply comes when the reload is done. */
export async function reload(ctx: ApplyContext): Promise<void> {
  ctx.log.info({ plugin: 'systemd' }, 'systemd: Manager.Reload');
  await managerMutate(ctx, 'Reload', '', [], TUNABLES.systemdReloadMs);
}

export async function resetFailed(ctx: ApplyContext, name: string): Promise<void> {
  await managerMutate(ctx, 'ResetFailedUnit', 's', [name]);
}

export const JOB_METHODS = {
  start: 'StartUnit',
  stop: 'StopUnit',
  restart: 'RestartUnit',
  'try-restart': 'TryRestartUnit',
  'reload-or-restart': 'ReloadOrRestartUnit',
  'reload-or-try-restart': 'ReloadOrTryRestartUnit',
} as const;
export type JobKind = keyof typeof JOB_METHODS;

/** systemd emits job and unit signals only while some client is subscribed (per connection). */
export async function subscribe(settings: Settings): Promise<void> {
  try {
    await manager(settings, 'Subscribe');
  } catch (err) {
    if (!(err instanceof Error && /already subscribed/i.test(err.message))) throw err;
  }
}

/**
 * Waits for JobRemoved of jobs this run queues. Open it BEFORE queuing jobs: a signal that
 * arrives before the job path is known is kept until someone asks for it.
 */
export class JobWaiter {
  private results = new Map<string, string>();
  private waiters = new Map<string, (result: string) => void>();
  private sub?: { dispose(): Promise<void> };

  private constructor(private ctx: ApplyContext) {}

  static async open(ctx: ApplyContext): Promise<JobWaiter> {
    const w = new JobWaiter(ctx);
    w.sub = await onSignal(
      ctx.settings,
      { sender: DEST, path: PATH, interface: MANAGER, member: 'JobRemoved' },
      (m) => {
        const [, job, , result] = m.body as [number, string, string, string];
        const f = w.waiters.get(job);
        if (f) {
          w.waiters.delete(job);
          f(result);
        } else w.results.set(job, result);
      },
    );
    await subscribe(ctx.settings);
    return w;
  }

  /** Queue a job (mode replace) and resolve with its result (done, failed, timeout, canceled, dependency, skipped). */
  async run(kind: JobKind, unit: string, timeoutMs: number): Promise<string> {
    const [job] = (await managerMutate(this.ctx, JOB_METHODS[kind], 'ss', [unit, 'replace'])) as [string];
    const early = this.results.get(job);
    if (early !== undefined) {
      this.results.delete(job);
      return early;
    }
    const signal = this.ctx.signal;
    return new Promise<string>((resolve, reject) => {
      // the run stopped (or the core's call timed out): stop waiting for JobRemoved
      const stopped = () => {
        clearTimeout(t);
        this.waiters.delete(job);
        reject(abortedError(signal, `${kind} of ${unit} (job ${job})`));
      };
      const t = setTimeout(() => {
        signal.removeEventListener('abort', stopped);
        this.waiters.delete(job);
        reject(
          new OpdError(
            'backend-failed',
            `${kind} of ${unit} did not finish within ${Math.round(timeoutMs / 1000)} s (job ${job})`,
            { hint: `look at the unit: journalctl -u ${unit}` },
          ),
        );
      }, timeoutMs);
      this.waiters.set(job, (r) => {
        clearTimeout(t);
        signal.removeEventListener('abort', stopped);
        resolve(r);
      });
      if (signal.aborted) stopped();
      else signal.addEventListener('abort', stopped, { once: true });
    });
  }

  async dispose(): Promise<void> {
    await this.sub?.dispose();
  }
}
