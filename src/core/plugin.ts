/**
 * The plugin contract. Small and typed: a plugin reads, plans (pure) and applies; the core
 * owns order, retries, timeouts, dry run, verification and the audit trail.
 */
import type { Operation } from 'fast-json-patch';
import type { Logger } from 'pino';
import { OpdError, toOpdError } from './errors.js';
import type { HostFacts } from './facts.js';

export type Obj = Record<string, unknown>;

/** Endpoints and switches that tests and users point anywhere (flags / env). */
/**
 * The settings of a run: opd's own below, and each plugin's by the key of its manifest's
 * SettingSpec (src/core/manifest.ts); a plugin reads its own with `settingOf(settings, SPEC)`.
 */
export interface Settings {
  /** Root directory for file-like plugins (sandboxing). */
  root?: string;
  /** D-Bus system bus address (defaults to DBUS_SYSTEM_BUS_ADDRESS / the system socket). */
  dbusAddress?: string;
  [key: string]: unknown;
}

export interface ReadContext {
  readonly settings: Settings;
  readonly log: Logger;
  /** Every plugin section of the document being run (read-only), for reads that must know the document's other resources (checks: is a busy port the document's own service?). */
  readonly document?: Readonly<Record<string, Obj>>;
  /** The host's facts of this run (src/core/facts.ts), read once by the core: a plugin reads them here, not again. */
  readonly facts?: HostFacts;
}

const applyToken: unique symbol = Symbol('opd.apply');

/**
 * Only the apply path of the core can make one: mutating helpers (the mutate doors of
 * src/exec.ts and src/dbus.ts) take an ApplyContext, so the read/diff path (opd diff,
 * apply --dry-run) cannot call them by construction. `signal` aborts when the run is stopped
 * or the call's time (src/core/tunables.ts) is up; the doors honour it.
 */
/** How often ApplyContext.done lets the event loop turn (ms). */
const DONE_YIELD_MS = 20;
let lastYield = 0;

export class ApplyContext implements ReadContext {
  readonly [applyToken] = true;
  private constructor(
    readonly settings: Settings,
    readonly log: Logger,
    readonly allowDestroy: boolean,
    readonly signal: AbortSignal,
    /** Per-run scratch space of each plugin (systemd: a Reload is pending), shared by the run's calls. */
    readonly runState: Map<string, unknown>,
    /**
     * The run is stopping (a first SIGINT/SIGTERM): finish the change in hand, start no other one.
     * A plugin that applies a batch step by step reports the rest `not-started` (applyEach does).
     * `signal` is different: it aborts the change in hand (a second signal, a timeout).
     */
    readonly stopping: AbortSignal = new AbortController().signal,
    /**
     * Where the doors note each directory they create a temp file in (its host path, and the
     * --root it lies under): recovery removes what a killed run left there.
     */
    readonly noteTempDir: (dir: string, root: string) => void = () => {},
    private readonly onDone: (r: ChangeResult) => void = () => {},
  ) {}
  /**
   * Report one change of the batch in hand as done as soon as it is (a plugin applying a batch
   * step by step: applyEach does it). The core then reports it at once (progress, audit) instead
   * of when the whole batch returns; the batch's result array still holds it. Await it: every
   * DONE_YIELD_MS it lets the event loop turn, so the audit's group commit and the progress
   * timers run while a plugin whose steps never wait for I/O (files) works through a long batch.
   */
  async done(r: ChangeResult): Promise<void> {
    this.onDone(r);
    const t = Date.now();
    if (t - lastYield >= DONE_YIELD_MS) {
      lastYield = t;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  /** @internal used by src/core/apply.ts (and recovery) only */
  static create(
    settings: Settings,
    log: Logger,
    allowDestroy: boolean,
    signal: AbortSignal = new AbortController().signal,
    stopping?: AbortSignal,
    noteTempDir?: (dir: string, root: string) => void,
  ): ApplyContext {
    return new ApplyContext(settings, log, allowDestroy, signal, new Map(), stopping, noteTempDir);
  }
  /** The same run's context with another signal (the core: one per apply call, with its timeout) and where `done` reports. */
  withSignal(signal: AbortSignal, onDone?: (r: ChangeResult) => void): ApplyContext {
    return new ApplyContext(
      this.settings,
      this.log,
      this.allowDestroy,
      signal,
      this.runState,
      this.stopping,
      this.noteTempDir,
      onDone ?? this.onDone,
    );
  }
}

/**
 * Between two changes of a batch: let the event loop run (a signal's handler is a macrotask: a
 * loop of synchronous writes would never see it), then say whether the run is stopping. A batch
 * applied step by step asks before each step and reports the rest `not-started`.
 */
export async function stopRequested(ctx: ApplyContext): Promise<boolean> {
  // a turn of the event loop costs tens of microseconds: taken at most every few milliseconds
  const now = performance.now();
  if (now - lastTurn >= STOP_CHECK_MS) {
    await new Promise<void>((r) => setImmediate(r));
    lastTurn = performance.now();
  }
  return ctx.stopping.aborted;
}

/** How often (at most) a batch applied step by step lets the event loop see a signal. */
const STOP_CHECK_MS = 5;
let lastTurn = 0;

export function assertApplyContext(ctx: unknown): asserts ctx is ApplyContext {
  if (!(ctx instanceof ApplyContext)) throw new Error('mutating call outside of apply (dry-run violation)');
}

export type DiffAction = 'create' | 'update' | 'delete' | 'noop';

/**
 * The difference of one resource (`plugin/collection/name`) between host and document. `T` is
 * the resource's type, for a plan function of one collection (openflow: `ResourceDiff<Bridge & Obj>`).
 */
export interface ResourceDiff<T extends Obj = Obj> {
  plugin: string;
  collection: string;
  name: string;
  address: string;
  action: DiffAction;
  /** Current state projected to what the document names; undefined when absent. */
  current: T | undefined;
  /** Desired state without meta keys; undefined for a delete. */
  desired: T | undefined;
  /** RFC 6902 operations turning `current` into `desired`. */
  ops: Operation[];
  /** The document (or --allow-destroy) allows data-destroying operations on it. */
  allowDestroy: boolean;
  /** Faults the backend reports for this resource although its state matches: address → message. */
  faults?: Record<string, string>;
}

/** One concrete step. Sub-addresses are fine: `ovs/bridges/br0/ports/p1`. `D` is the plugin's payload type. */
export interface Change<D = unknown> {
  address: string;
  /** The resource this change belongs to (`plugin/collection/name`). */
  resource: string;
  plugin: string;
  /** create | update | delete, or a verb such as restart, start, stop, reload. */
  action: string;
  /** Human summary: `tag 10 → 20`. */
  summary: string;
  /** Why this step is needed, when it is not obvious (`unit file changed`). */
  reason?: string;
  /** Destroys data: refused unless allowed by the document or --allow-destroy. */
  destructive?: boolean;
  /**
   * The one refusal: this change may not run, and why. `opd diff` shows it as refused, apply
   * never attempts it (and skips what depends on it). Plugins set it in plan() for what their
   * backend would refuse; the core sets it for destructive changes without permission.
   */
  refused?: string;
  /** What to do about a refusal. */
  refusedHint?: string;
  /** Addresses this change must come after (the plan turns them into `deps`). */
  after?: string[];
  /**
   * A failed precondition (preflight findings): when any change of a plan carries a blocker,
   * apply stops before anything is applied and names it.
   */
  blocker?: string;
  /** Set by the plan: this change's id in the plan, and the ids of the changes it needs. The core skips a change whose dependency failed. */
  id?: number;
  deps?: number[];
  /** RFC 6902 operations for the audit trail. */
  ops?: Operation[];
  /** Plugin payload (JSON-serialisable). */
  data?: D;
}

export interface ChangeResult {
  address: string;
  /** `not-started`: the run was stopping (ctx.stopping) before this change of the batch began. */
  status: 'ok' | 'failed' | 'not-started';
  error?: OpdError;
  /** Output of the step (exec plugin: stdout and stderr), recorded in the audit trail with secrets scrubbed. */
  output?: string;
}

/** A failed precondition found by a plugin's preflight(): the run stops before anything is applied. */
export interface Finding {
  address: string;
  message: string;
  /** The failed fields of the resource with their wanted values (the change's ops in `opd diff -o json`). */
  fields?: Record<string, unknown>;
  /** A recommendation that does not hold (checks' `recommend:`): a warning of diff and apply, never a blocker. */
  advisory?: boolean;
}

/** `from` must come after `to` (from depends on to). Addresses or prefixes. */
export interface Edge {
  from: string;
  to: string;
  kind?: string;
  /** Match `to` exactly (the resource's own change), not everything under it. */
  exact?: boolean;
  /** Where the document says so (a JSON pointer: `depends_on` entries), for errors with file:line. */
  at?: string;
}

export interface Disposable {
  dispose(): void | Promise<void>;
}

export interface WatchContext<S extends object = Obj> extends ReadContext {
  readonly desired: S;
}

/**
 * Who made a drift, where the host can tell (the daemon's drift entries, `opd status`): the actor
 * as the backend knows it, and how it was learned; `source: 'unknown'` with the reason otherwise.
 */
export interface Attribution {
  /** how it was learned: a backend's own record (e.g. 'ovsdb transaction comment'), or 'unknown' */
  source: string;
  /** the actor, as far as the source says: its command line, its parent process, pid, uid, user, unit */
  actor?: { command?: string; parent?: string; pid?: number; uid?: number; user?: string; unit?: string };
  /** when the source says the change was made (ISO 8601) */
  at?: string;
  /** why no actor is known (source 'unknown') */
  reason?: string;
}

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

export interface NormalizeContext {
  /** Record that normalized pointer `to` came from source pointer `from` (for error locations). */
  remap(to: string, from: string): void;
  /**
   * A field that opd accepts but does not act on (or reads differently from op-dbus): the
   * document stays valid and validate/diff/apply print the warning with file:line:col.
   * `pointer` is the source pointer (or a normalized one that `remap` maps back).
   */
  warn(pointer: string, message: string, fix?: string): void;
  /**
   * A foreign form opd refuses by name (an op-dbus feature it does not have): the document is
   * invalid (exit 65) and the problem is listed with the schema's. Say what to use instead in `fix`.
   * The normalizer should also drop the refused key so the schema does not report it twice.
   */
  refuse(pointer: string, message: string, fix?: string): void;
}

export interface Plugin<S extends object = Obj, D = unknown> {
  /** Key under `plugins:`. */
  readonly name: string;
  /** JSON Schema (2020-12) of the section. */
  readonly schema: object;
  /** Keys of the section that are maps of resources (name → spec). */
  readonly collections: readonly string[];
  /** Accept other input forms (op-dbus arrays) and return the opd form. Runs before validation. */
  normalize?(section: unknown, ctx: NormalizeContext): unknown;
  /**
   * Move entries of foreign forms (op-dbus `net.interfaces` of type ovs-bridge) from other
   * sections into this plugin's section. Mutates `plugins`; runs before normalize.
   */
  adopt?(plugins: Record<string, unknown>, ctx: NormalizeContext): void;
  /** Current state in the section's own shape, for what `desired` names (all members of pruned collections). */
  read(ctx: ReadContext, desired: S): Promise<S>;
  /** Pure: turn one resource diff into concrete changes (with `after` naming what each needs). */
  plan(diff: ResourceDiff): Change<D>[];
  /**
   * Apply a ready batch of this plugin's changes and report one result per change. The core
   * hands over only changes whose dependencies succeeded (with `transaction`, also the ones
   * they bring along), never a refused one; it retries, times out (ctx.signal), skips
   * dependents of failures and runs plugins side by side. A plugin that never changes the
   * host (checks) has no apply.
   */
  apply?(ctx: ApplyContext, batch: Change<D>[]): Promise<ChangeResult[]>;
  /**
   * How many apply calls of this plugin may run at once (default 1: one batch at a time). Above
   * 1, the core hands changes over one per call, up to this many side by side (lxc containers).
   */
  readonly concurrency?: number;
  /**
   * The plugin applies a batch as one all-or-nothing transaction (one OVSDB transact): the core
   * then hands over a change together with the same-plugin changes it depends on, and when the
   * whole batch fails it retries the changes one at a time, skipping the dependents of a failure.
   */
  readonly transaction?: boolean;
  /** Called once after the plugin's last batch of a run (systemd: the pending Reload). */
  flush?(ctx: ApplyContext): Promise<void>;
  /** Preconditions checked before anything is applied (checks plugin); any finding blocks the run. */
  preflight?(ctx: ReadContext, desired: S): Promise<Finding[]>;
  /**
   * Things the backend reports as broken although the state matches (an interface that
   * ovs-vswitchd rejected): address (or sub-address) → message. A faulty resource is not
   * converged: it gets planned, and verification fails while the fault stays.
   */
  faults?(current: S, desired: S): Record<string, string>;
  /**
   * Changes triggered by other resources' changes in this run (exec's refresh_on, Puppet's
   * subscribe/refreshonly): `changed` holds the addresses of the resources the plan changes.
   * Returned changes are ordered after what triggered them (declare that in edges()).
   */
  refresh?(desired: S, changed: ReadonlySet<string>): Change<D>[];
  /** Implicit dependencies; `all` is every plugin section of the document (cross-plugin edges). */
  edges?(desired: S, all: Record<string, Obj>): Edge[];
  /**
   * `false` when this plugin's plan never orders a change after another resource (every `after`
   * names the resource itself or its parts): the edge computation then does not plan a create of
   * each resource to find such orders (10,000 OVS ports: about 100 ms of `opd validate`).
   * Default true; test/unit/core/plan-orders.test.ts holds each plugin that says false to it.
   */
  ordersAfterOthers?: boolean;
  /** Whole current state for `opd show` (all: include what opd does not manage). */
  show?(ctx: ReadContext, opts: { all: boolean }): Promise<S>;
  /** Event source for the daemon; calls onDrift when something may have changed. */
  watch?(ctx: WatchContext<S>, onDrift: (address?: string) => void): Promise<Disposable>;
  /**
   * Who changed these resources outside opd since `since` (epoch ms: when the daemon last saw them
   * converged), from the backend's own records. Without it, drift is recorded with an unknown actor.
   */
  attribute?(ctx: ReadContext, drifted: readonly ResourceDiff[], since: number): Promise<Attribution>;
  /** Reachability of the backend and why not. */
  doctor?(ctx: ReadContext): Promise<DoctorCheck[]>;
}

/**
 * The apply of a plugin whose changes are independent steps: runs them one after another and
 * reports each (an error without an address gets the change's). The core owns everything else.
 */
export function applyEach<D>(
  step: (ctx: ApplyContext, c: Change<D>) => void | Promise<void | { output?: string }>,
): (ctx: ApplyContext, batch: Change<D>[]) => Promise<ChangeResult[]> {
  return async (ctx, batch) => {
    assertApplyContext(ctx);
    const out: ChangeResult[] = [];
    for (const c of batch) {
      if (await stopRequested(ctx)) {
        out.push({ address: c.address, status: 'not-started' });
        continue;
      }
      try {
        const r = await step(ctx, c);
        const ok: ChangeResult = {
          address: c.address,
          status: 'ok',
          ...(r?.output !== undefined ? { output: r.output } : {}),
        };
        out.push(ok);
        await ctx.done(ok);
      } catch (err) {
        const e = toOpdError(err);
        out.push({
          address: c.address,
          status: 'failed',
          error: e.address
            ? e
            : new OpdError(e.kind, e.message, { address: c.address, hint: e.hint, problems: e.problems, cause: err }),
        });
      }
    }
    return out;
  };
}

export function address(plugin: string, collection: string, name: string, ...sub: string[]): string {
  return [plugin, collection, name, ...sub].join('/');
}

/** A change of a diff's whole resource: its address, all its ops (spread more fields over it: `after`, `destructive`). */
export function resourceChange<D>(d: ResourceDiff, action: string, summary: string, data: D): Change<D> {
  return { address: d.address, resource: d.address, plugin: d.plugin, action, summary, ops: d.ops, data };
}
