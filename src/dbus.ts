/**
 * The only door to D-Bus: one shared system-bus connection (dbus-next), raw method calls
 * (no per-object introspection round-trips), signal subscriptions, and a call counter for
 * benchmarks. The address follows settings.dbusAddress, then DBUS_SYSTEM_BUS_ADDRESS.
 */
import type { MessageBus, Message as DbusMessage } from 'dbus-next';
import { OpdError, abortedError } from './core/errors.js';
import { assertApplyContext, type ApplyContext, type Settings } from './core/plugin.js';
import { TUNABLES } from './core/tunables.js';
import { CallCounter } from './core/counter.js';

type DbusModule = typeof import('dbus-next');
let mod: DbusModule | undefined;
async function dbusModule(): Promise<DbusModule> {
  if (!mod) {
    const m = (await import('dbus-next')) as unknown as { default?: DbusModule } & DbusModule;
    mod = m.default ?? m;
  }
  return mod;
}

const stats = new CallCounter();

export function dbusStats(): { calls: number; byMember: Record<string, number> } {
  return { calls: stats.total, byMember: stats.names() };
}

export function resetDbusStats(): void {
  stats.reset();
}

export const DEFAULT_SYSTEM_BUS = 'unix:path=/run/dbus/system_bus_socket';

export function busAddress(settings: Settings = {}): string {
  return (settings.dbusAddress as string | undefined) ?? process.env.DBUS_SYSTEM_BUS_ADDRESS ?? DEFAULT_SYSTEM_BUS;
}

const buses = new Map<string, Promise<MessageBus>>();

function unavailable(address: string, why: string): OpdError {
  return new OpdError('backend-unavailable', `no D-Bus system bus at ${address}: ${why}`, {
    hint: 'start dbus (and systemd), or set DBUS_SYSTEM_BUS_ADDRESS; `opd doctor` shows what is reachable',
  });
}

/** The shared connection for an address; connects once, reports a missing bus plainly. */
export function systemBus(settings: Settings = {}): Promise<MessageBus> {
  const address = busAddress(settings);
  let p = buses.get(address);
  if (!p) {
    p = (async () => {
      const d = await dbusModule();
      d.setBigIntCompat(false);
      const bus = d.sessionBus({ busAddress: address });
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(unavailable(address, 'timed out connecting')), TUNABLES.dbusConnectMs);
        bus.once('connect', () => {
          clearTimeout(t);
          resolve();
        });
        bus.once('error', (err: Error) => {
          clearTimeout(t);
          reject(unavailable(address, err.message));
        });
      });
      bus.on('error', () => {
        buses.delete(address);
      });
      return bus;
    })();
    p.catch(() => buses.delete(address));
    buses.set(address, p);
  }
  return p;
}

export interface CallSpec {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
  /** ms; default TUNABLES.dbusCallMs */
  timeout?: number;
}

/**
 * dbus-daemon refuses more than a few hundred pending replies per connection (the system bus
 * allows 128): calls beyond MAX_IN_FLIGHT wait here for a free slot.
 */
const MAX_IN_FLIGHT = 64;
let inFlight = 0;
const slotWaiters: (() => void)[] = [];

async function slot(): Promise<void> {
  if (inFlight < MAX_IN_FLIGHT) {
    inFlight++;
    return;
  }
  await new Promise<void>((resolve) => slotWaiters.push(resolve));
}

function release(): void {
  const next = slotWaiters.shift();
  if (next) next();
  else inFlight--;
}

/**
 * The read door: a method call that only looks (properties, lists, Resolve). Returns the reply
 * body; D-Bus errors become OpdError('backend-failed').
 */
export function callRead(settings: Settings, spec: CallSpec): Promise<unknown[]> {
  return callBounded(settings, spec);
}

/**
 * The mutate door: a method call that changes the host (EnableUnitFiles, StartUnit,
 * InstallPackages…), only inside an apply; its wait ends when ctx.signal fires.
 */
export function callMutate(ctx: ApplyContext, spec: CallSpec): Promise<unknown[]> {
  assertApplyContext(ctx);
  return callBounded(ctx.settings, spec, ctx.signal);
}

async function callBounded(settings: Settings, spec: CallSpec, signal?: AbortSignal): Promise<unknown[]> {
  await slot();
  try {
    return await callNow(settings, spec, signal);
  } finally {
    release();
  }
}

async function callNow(settings: Settings, spec: CallSpec, signal?: AbortSignal): Promise<unknown[]> {
  const d = await dbusModule();
  const bus = await systemBus(settings);
  const key = `${spec.interface}.${spec.member}`;
  stats.count(key);
  const msg = new d.Message({
    destination: spec.destination,
    path: spec.path,
    interface: spec.interface,
    member: spec.member,
    signature: spec.signature ?? '',
    body: spec.body ?? [],
  });
  // D-Bus has no cancel: on abort (the call's time, or the run's signal) opd stops waiting for the reply
  const ms = spec.timeout ?? TUNABLES.dbusCallMs;
  const stop = signal ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
  let onAbort: (() => void) | undefined;
  try {
    const reply = await new Promise<DbusMessage | null>((resolve, reject) => {
      onAbort = () => reject(abortedError(stop, `D-Bus call ${key} on ${spec.destination}`));
      if (stop.aborted) return onAbort();
      stop.addEventListener('abort', onAbort, { once: true });
      bus.call(msg).then(resolve, reject);
    });
    return reply?.body ?? [];
  } catch (err) {
    if (err instanceof OpdError) throw err;
    const e = err as { type?: string; text?: string; message?: string };
    const name = e.type ?? 'error';
    if (name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner')
      throw new OpdError('backend-unavailable', `${spec.destination} is not on the bus (${e.text ?? e.message})`, {
        hint: `start the service that owns ${spec.destination}`,
      });
    if (
      name === 'org.freedesktop.DBus.Error.AccessDenied' ||
      name === 'org.freedesktop.DBus.Error.InteractiveAuthorizationRequired'
    )
      throw new OpdError('permission', `${key} was denied: ${e.text ?? e.message}`, { hint: 'run opd as root' });
    throw Object.assign(new OpdError('backend-failed', `${key} failed: ${name}: ${e.text ?? e.message}`), {
      dbusName: name,
    });
  } finally {
    if (onAbort) stop.removeEventListener('abort', onAbort);
  }
}

/** Properties.GetAll in one call, values unwrapped from their Variants. */
export async function getAll(
  settings: Settings,
  destination: string,
  path: string,
  iface: string,
): Promise<Record<string, unknown>> {
  const [props] = (await callRead(settings, {
    destination,
    path,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'GetAll',
    signature: 's',
    body: [iface],
  })) as [Record<string, { value: unknown }>];
  return Object.fromEntries(Object.entries(props ?? {}).map(([k, v]) => [k, unwrap(v)]));
}

export function unwrap(v: unknown): unknown {
  if (v && typeof v === 'object' && 'signature' in v && 'value' in v) return unwrap((v as { value: unknown }).value);
  if (Array.isArray(v)) return v.map(unwrap);
  return v;
}

export async function variant(signature: string, value: unknown): Promise<unknown> {
  const d = await dbusModule();
  return new d.Variant(signature, value);
}

export interface SignalMatch {
  sender?: string;
  path?: string;
  pathNamespace?: string;
  interface?: string;
  member?: string;
}

/** Subscribe to signals (AddMatch + message listener). Returns a disposer. */
export async function onSignal(
  settings: Settings,
  match: SignalMatch,
  handler: (m: { path: string; interface: string; member: string; body: unknown[]; sender: string }) => void,
): Promise<{ dispose(): Promise<void> }> {
  const bus = await systemBus(settings);
  const rule = [
    "type='signal'",
    ...Object.entries(match).map(([k, v]) => `${k === 'pathNamespace' ? 'path_namespace' : k}='${v}'`),
  ].join(',');
  await callRead(settings, {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'AddMatch',
    signature: 's',
    body: [rule],
  });
  const listener = (msg: DbusMessage) => {
    if (msg.type !== 4 /* SIGNAL */) return;
    if (match.interface && msg.interface !== match.interface) return;
    if (match.member && msg.member !== match.member) return;
    if (match.path && msg.path !== match.path) return;
    if (match.pathNamespace && !(msg.path === match.pathNamespace || msg.path?.startsWith(match.pathNamespace + '/')))
      return;
    handler({ path: msg.path!, interface: msg.interface!, member: msg.member!, body: msg.body, sender: msg.sender! });
  };
  bus.on('message', listener);
  return {
    async dispose() {
      bus.removeListener('message', listener);
      await callRead(settings, {
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'RemoveMatch',
        signature: 's',
        body: [rule],
      }).catch(() => undefined);
    },
  };
}

/** Close every connection (end of a CLI run, daemon stop). */
export async function closeBuses(): Promise<void> {
  for (const [a, p] of buses) {
    buses.delete(a);
    try {
      (await p).disconnect();
    } catch {
      /* never connected */
    }
  }
}

/** Who called an exported method: the bus gives the sender's unique name (it cannot be forged). */
export interface Caller {
  /** the sender's unique connection name (":1.42"), for GetConnectionUnixUser and polkit */
  sender: string;
  /** the caller allows interactive authorization (ALLOW_INTERACTIVE_AUTHORIZATION, e.g. busctl) */
  interactive: boolean;
}

export interface ServiceMethod {
  /** D-Bus input signature ('' for none) */
  in: string;
  /** D-Bus output signature ('' for none) */
  out: string;
  /** called with the method's arguments, then the caller */
  fn: (...args: never[]) => unknown | Promise<unknown>;
}

export interface ServiceObject {
  path: string;
  interface: string;
  methods: Record<string, ServiceMethod>;
  /** signal name → signature */
  signals?: Record<string, string>;
}

export interface ExportedService {
  /** Emit a signal declared on one of the exported objects. */
  emit(path: string, iface: string, member: string, ...args: unknown[]): void;
  dispose(): Promise<void>;
}

/**
 * Own `names` (DO_NOT_QUEUE: a second daemon fails plainly instead of waiting) and export objects
 * on the shared connection. Each method gets its arguments and then the Caller (its sender name):
 * the method authorizes it (see src/daemon/dbus-api.ts), the bus policy is a first filter. A method
 * that throws replies with the D-Bus error `org.opd.Error.<Kind>` and the message
 * (`org.freedesktop.DBus.Error.AccessDenied` for a permission error).
 */
export async function exportService(
  settings: Settings,
  names: string[],
  objects: ServiceObject[],
): Promise<ExportedService> {
  const d = await dbusModule();
  const bus = await systemBus(settings);
  const instances = new Map<string, InstanceType<typeof d.interface.Interface>>();
  // A method call is answered here, not by dbus-next's dispatcher, so that the method learns its
  // caller (the sender name the bus stamped on the message) and can authorize it. The exported
  // interfaces below still describe the objects for Introspect and emit the signals.
  const errorOf = (err: unknown) => {
    const e = err as { kind?: string; message?: string; hint?: string };
    const name =
      e.kind === 'permission'
        ? 'org.freedesktop.DBus.Error.AccessDenied'
        : `org.opd.Error.${(e.kind ?? 'failed').replace(/(^|-)(\w)/g, (_, _d, c: string) => c.toUpperCase())}`;
    return { name, text: `${e.message ?? String(err)}${e.hint ? ` (hint: ${e.hint})` : ''}` };
  };
  const handler = (msg: DbusMessage): boolean => {
    if (msg.type !== 1 /* METHOD_CALL */) return false;
    const obj = objects.find((o) => o.path === msg.path && o.interface === msg.interface);
    const spec = obj?.methods[msg.member ?? ''];
    if (!spec || (msg.signature ?? '') !== spec.in) return false; // dbus-next answers UnknownMethod
    const caller: Caller = { sender: msg.sender ?? '', interactive: ((msg.flags ?? 0) & 4) !== 0 };
    const noReply = ((msg.flags ?? 0) & 1) !== 0;
    void (async () => {
      try {
        const out = await (spec.fn as (...a: unknown[]) => unknown)(...(msg.body ?? []), caller);
        if (!noReply) bus.send(d.Message.newMethodReturn(msg, spec.out, spec.out ? [out] : []));
      } catch (err) {
        const { name, text } = errorOf(err);
        if (!noReply) bus.send(d.Message.newError(msg as unknown as string, name, text));
      }
    })();
    return true;
  };
  bus.addMethodHandler(handler);
  for (const obj of objects) {
    class Exported extends d.interface.Interface {}
    const proto = Exported.prototype as unknown as Record<string, unknown>;
    // never reached (the handler above answers first); dbus-next wants a function per method
    for (const m of Object.keys(obj.methods))
      proto[m] = () => {
        throw new d.DBusError('org.opd.Error.Bug', `${m} was not dispatched`);
      };
    for (const s of Object.keys(obj.signals ?? {}))
      proto[s] = (...args: unknown[]) => (args.length === 1 ? args[0] : args);
    Exported.configureMembers({
      methods: Object.fromEntries(
        Object.entries(obj.methods).map(([m, spec]) => [m, { inSignature: spec.in, outSignature: spec.out }]),
      ),
      signals: Object.fromEntries(Object.entries(obj.signals ?? {}).map(([s, sig]) => [s, { signature: sig }])),
    });
    const inst = new Exported(obj.interface);
    bus.export(obj.path, inst);
    instances.set(`${obj.path} ${obj.interface}`, inst);
  }
  const owned: string[] = [];
  try {
    for (const n of names) {
      const r = await bus.requestName(n, 4 /* DBUS_NAME_FLAG_DO_NOT_QUEUE */);
      if (r !== 1 /* PRIMARY_OWNER */ && r !== 4 /* ALREADY_OWNER */)
        throw new OpdError('backend-failed', `the D-Bus name ${n} is owned by another process`, {
          hint: 'is another opd daemon running? `busctl status ' + n + '`',
        });
      owned.push(n);
    }
  } catch (err) {
    for (const n of owned) await bus.releaseName(n).catch(() => undefined);
    for (const [k, inst] of instances) bus.unexport(k.split(' ')[0], inst);
    bus.removeMethodHandler(handler);
    const e = err as { type?: string; text?: string; message?: string };
    if (err instanceof OpdError) throw err;
    if (e.type === 'org.freedesktop.DBus.Error.AccessDenied')
      throw new OpdError(
        'permission',
        `not allowed to own ${names.join(', ')} on the system bus: ${e.text ?? e.message}`,
        {
          hint: 'run as root and install packaging/dbus/org.opd.Reconciler1.conf into /etc/dbus-1/system.d/ (then reload dbus)',
        },
      );
    throw new OpdError('backend-failed', `cannot own ${names.join(', ')}: ${e.text ?? e.message}`);
  }
  return {
    emit(path, iface, member, ...args) {
      const inst = instances.get(`${path} ${iface}`) as unknown as
        Record<string, (...a: unknown[]) => void> | undefined;
      if (!inst || typeof inst[member] !== 'function')
        throw new OpdError('bug', `no signal ${iface}.${member} on ${path}`);
      inst[member](...args);
    },
    async dispose() {
      for (const n of owned) await bus.releaseName(n).catch(() => undefined);
      for (const [k, inst] of instances) bus.unexport(k.split(' ')[0], inst);
      bus.removeMethodHandler(handler);
    },
  };
}
