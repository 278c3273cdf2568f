/**
 * Apply a plan. The core owns every decision that is not about a backend: a change runs once
 * the changes it needs (its `deps`) succeeded, a failed or refused one skips its dependents,
 * independent changes go on; a plugin gets its ready changes as one batch (or one at a time,
 * up to its declared concurrency), plugins run side by side in a bounded pool; retries with
 * capped exponential backoff when the error's kind is retryable; every call gets an
 * AbortSignal that fires when the run is stopped or the call's time is up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ApplyContext, type ChangeResult, type Plugin, type Settings } from './plugin.js';
import type { Plan, PlannedChange } from './plan.js';
import { OpdError, toOpdError } from './errors.js';
import { TUNABLES } from './tunables.js';
import { removePath } from './hostfs.js';

export type Outcome = 'ok' | 'failed' | 'skipped' | 'refused' | 'pending';

export interface ChangeOutcome {
  change: PlannedChange;
  status: Outcome;
  error?: OpdError;
  attempts: number;
  /** What the change printed (exec), for the audit trail; secrets are scrubbed there. */
  output?: string;
  /** Skipped because the run was stopping (a signal) before the change began. */
  notStarted?: boolean;
}

export interface ApplyOptions {
  settings: Settings;
  log: Logger;
  allowDestroy: boolean;
  retries?: number;
  backoffMs?: number;
  backoffCapMs?: number;
  timeoutMs?: number;
  /** Aborts the changes in flight (a second signal): their outcome is unknown, recovery reads it later. */
  signal?: AbortSignal;
  /**
   * Stop (a first SIGINT/SIGTERM): start no new change, let the ones in flight finish (bounded by
   * their timeouts); the rest are skipped as not started. Its `reason` names the signal.
   */
  stop?: AbortSignal;
  /**
   * Write-ahead: called with the changes of the batches about to start, before any of them
   * mutates anything (the audit writes and fsyncs one intent here). Each change is announced once.
   */
  onIntent?: (changes: PlannedChange[]) => void;
  /** Where the doors create temp files (see ApplyContext.noteTempDir). */
  noteTempDir?: (dir: string, root: string) => void;
  /** Called with the changes of each batch handed to a plugin, as it starts (progress: what is running). */
  onStart?: (changes: PlannedChange[]) => void;
  /** Called once per change as soon as its outcome is known (audit, progress). */
  onOutcome?: (o: ChangeOutcome) => void;
  /** Called after each finished batch (the audit flushes its entries here). */
  onWave?: () => void;
}

interface Slot extends ChangeOutcome {
  running: boolean;
  /** The change's transaction failed as a whole: hand it over alone from now on. */
  alone: boolean;
}

export async function applyPlan(
  plan: Plan,
  plugins: Map<string, Plugin>,
  opts: ApplyOptions,
): Promise<ChangeOutcome[]> {
  const runSignal = opts.signal ?? new AbortController().signal;
  const stop = opts.stop ?? new AbortController().signal;
  const ctx = ApplyContext.create(opts.settings, opts.log, opts.allowDestroy, runSignal, stop, opts.noteTempDir);
  const stopped = () => runSignal.aborted || stop.aborted;
  const stopReason = () => {
    const r: unknown = stop.aborted ? stop.reason : runSignal.reason;
    return typeof r === 'string' ? r : 'a stop request';
  };
  const notStarted = (o: Slot) => {
    o.notStarted = true;
    settle(
      o,
      'skipped',
      new OpdError('dependency-failed', `not started: the run was stopped (${stopReason()})`, {
        address: o.change.address,
      }),
    );
  };
  const retries = opts.retries ?? TUNABLES.applyRetries;
  const base = opts.backoffMs ?? TUNABLES.backoffBaseMs;
  const cap = opts.backoffCapMs ?? TUNABLES.backoffCapMs;
  const timeout = opts.timeoutMs ?? TUNABLES.applyCallMs;
  const out: Slot[] = plan.changes.map((change) => ({
    change,
    status: 'pending',
    attempts: 0,
    running: false,
    alone: false,
  }));
  // a plugin with a flush (systemd's Reload) has not finished a change until its flush has: its
  // ok outcomes reach onOutcome (the audit trail) after the flush, as what they then are, so
  // that the trail and the report agree when the flush fails
  const held: Slot[] = [];
  const settle = (o: Slot, status: Outcome, error?: OpdError) => {
    o.status = status;
    o.running = false;
    if (error) o.error = error;
    if (status === 'ok' && plugins.get(o.change.plugin)?.flush) held.push(o);
    else opts.onOutcome?.(o);
  };
  for (const o of out)
    if (o.change.refused)
      settle(
        o,
        'refused',
        new OpdError('refused', o.change.refused, {
          address: o.change.address,
          ...(o.change.refusedHint ? { hint: o.change.refusedHint } : {}),
        }),
      );
  const propagate = () => {
    for (let changed = true; changed;) {
      changed = false;
      for (const o of out) {
        if (o.status !== 'pending' || o.running) continue;
        const bad = o.change.deps
          .map((d) => out[d])
          .find((d) => d.status === 'failed' || d.status === 'skipped' || d.status === 'refused');
        // what waited for a change the stop left unstarted was not started either
        if (bad?.notStarted) {
          notStarted(o);
          changed = true;
        } else if (bad) {
          settle(
            o,
            'skipped',
            new OpdError('dependency-failed', `skipped: ${bad.change.address} (${bad.change.action}) ${bad.status}`, {
              address: o.change.address,
            }),
          );
          changed = true;
        }
      }
    }
  };
  propagate();
  opts.onWave?.();

  const inflight = new Map<string, number>();
  const used = new Set<string>();
  const tasks = new Set<Promise<void>>();
  const plugin = (name: string) => {
    const p = plugins.get(name);
    if (!p?.apply) throw new OpdError('bug', `plugin ${name} planned a change but cannot apply`);
    return p;
  };

  /** Ready changes of one plugin, grouped into the batches its contract asks for. */
  const batchesOf = (name: string, ready: Slot[]): Slot[][] => {
    const p = plugin(name);
    const limit = Math.max(1, p.concurrency ?? 1) - (inflight.get(name) ?? 0);
    if (limit <= 0) return [];
    if ((p.concurrency ?? 1) > 1) {
      // side by side, but never two changes of one resource at once (one container's steps stay in plan order)
      const busy = new Set(out.filter((o) => o.running).map((o) => o.change.resource));
      const pick: Slot[][] = [];
      for (const o of ready) {
        if (pick.length >= limit || busy.has(o.change.resource)) continue;
        busy.add(o.change.resource);
        pick.push([o]);
      }
      return pick;
    }
    const alone = ready.find((o) => o.alone);
    if (alone) return [[alone]];
    if (!p.transaction) return [ready];
    // a transaction takes a change together with the pending same-plugin changes it needs
    const inBatch = new Set(ready.map((o) => o.change.id));
    for (let grew = true; grew;) {
      grew = false;
      for (const o of out) {
        if (o.status !== 'pending' || o.running || o.alone || o.change.plugin !== name || inBatch.has(o.change.id))
          continue;
        if (o.change.deps.every((d) => out[d].status === 'ok' || inBatch.has(d))) {
          inBatch.add(o.change.id);
          grew = true;
        }
      }
    }
    return [[...inBatch].sort((a, b) => a - b).map((i) => out[i])];
  };

  /** Changes already announced in an intent (a transaction handed over one at a time is not announced twice). */
  const announced = new Set<number>();
  const launch = () => {
    const ready = new Map<string, Slot[]>();
    for (const o of out) {
      if (o.status !== 'pending' || o.running) continue;
      if (o.change.deps.every((d) => out[d].status === 'ok'))
        ready.set(o.change.plugin, [...(ready.get(o.change.plugin) ?? []), o]);
    }
    const starting: [string, Slot[]][] = [];
    pick: for (const [name, list] of [...ready].sort(([a], [b]) => a.localeCompare(b)))
      for (const batch of batchesOf(name, list)) {
        if (tasks.size + starting.length >= TUNABLES.applyPool) break pick;
        for (const o of batch) o.running = true;
        inflight.set(name, (inflight.get(name) ?? 0) + 1);
        starting.push([name, batch]);
      }
    // write-ahead: every change about to start is on the record before the first of them runs
    const fresh = starting.flatMap(([, b]) => b.filter((o) => !announced.has(o.change.id)));
    if (fresh.length) {
      for (const o of fresh) announced.add(o.change.id);
      opts.onIntent?.(fresh.map((o) => o.change));
    }
    for (const [name, batch] of starting) {
      used.add(name);
      const t: Promise<void> = runBatch(name, batch).finally(() => {
        inflight.set(name, inflight.get(name)! - 1);
        tasks.delete(t);
      });
      tasks.add(t);
    }
  };

  const runBatch = async (name: string, batch: Slot[]): Promise<void> => {
    const p = plugin(name);
    let todo = batch;
    for (let attempt = 0; todo.length; attempt++) {
      let results: ChangeResult[];
      let whole: OpdError | undefined;
      const signal = AbortSignal.any([runSignal, AbortSignal.timeout(timeout)]);
      // a change the plugin reports done before the batch returns is settled at once (progress)
      const early = new Set<Slot>();
      const pending = new Map<string, Slot[]>();
      for (const o of todo) pending.set(o.change.address, [...(pending.get(o.change.address) ?? []), o]);
      const onDone = (r: ChangeResult) => {
        if (r.status !== 'ok' || p.transaction) return; // failures may be retried: settled with the batch
        const o = pending.get(r.address)?.shift();
        if (!o || o.status !== 'pending') return;
        if (r.output !== undefined) o.output = r.output;
        early.add(o);
        settle(o, 'ok');
      };
      try {
        todo.forEach((o) => o.attempts++);
        if (attempt === 0) opts.onStart?.(todo.map((o) => o.change));
        results = await p.apply!(
          ctx.withSignal(signal, onDone),
          todo.map((o) => o.change),
        );
      } catch (err) {
        whole =
          signal.aborted && !runSignal.aborted
            ? new OpdError('backend-busy', `${name} apply timed out after ${timeout} ms`, { cause: err })
            : toOpdError(err);
        results = todo.map((o) => ({ address: o.change.address, status: 'failed' as const, error: whole }));
      }
      if (whole && p.transaction && todo.length > 1 && !whole.retryable && whole.kind !== 'backend-unavailable') {
        // the transaction is atomic: nothing happened. Hand its changes over one at a time to find the culprit.
        for (const o of todo) Object.assign(o, { running: false, alone: true });
        return;
      }
      const byAddr = new Map<string, ChangeResult[]>();
      for (const r of results) byAddr.set(r.address, [...(byAddr.get(r.address) ?? []), r]);
      const retry: Slot[] = [];
      for (const o of todo) {
        const r = byAddr.get(o.change.address)?.shift();
        if (early.has(o)) continue;
        if (!r) {
          settle(o, 'failed', new OpdError('bug', `${name} plugin returned no result for ${o.change.address}`));
          continue;
        }
        if (r.output !== undefined) o.output = r.output;
        if (r.status === 'ok') settle(o, 'ok');
        else if (r.status === 'not-started') notStarted(o);
        else if (r.error?.retryable && attempt < retries && !stopped()) retry.push(o);
        else settle(o, 'failed', r.error ?? new OpdError('backend-failed', `${o.change.address} failed`));
      }
      todo = retry;
      if (todo.length) {
        const wait = Math.min(cap, base * 2 ** attempt);
        opts.log.warn({ plugin: name, changes: todo.length, wait }, 'retrying after a transient error');
        await sleep(wait, undefined, { signal: AbortSignal.any([runSignal, stop]) }).catch(() => undefined);
      }
    }
  };

  for (;;) {
    if (stopped()) {
      for (const o of out) if (o.status === 'pending' && !o.running) notStarted(o);
    } else launch();
    if (!tasks.size) break;
    await Promise.race(tasks);
    propagate();
    opts.onWave?.();
  }
  if (out.some((o) => o.status === 'pending'))
    throw new OpdError('bug', 'apply made no progress (unsatisfiable dependencies)');
  for (const name of [...used].sort()) {
    const p = plugins.get(name)!;
    if (!p.flush) continue;
    try {
      await p.flush(ctx.withSignal(AbortSignal.any([runSignal, AbortSignal.timeout(timeout)])));
    } catch (err) {
      // what the flush was for (a Reload) did not happen: the changes of that plugin are not done
      const e = toOpdError(err);
      for (const o of out)
        if (o.change.plugin === name && o.status === 'ok') Object.assign(o, { status: 'failed', error: e });
    }
  }
  for (const o of held) opts.onOutcome?.(o);
  if (held.length) opts.onWave?.();
  return out.map(({ running: _r, alone: _a, ...o }) => o);
}

/**
 * Remove opd's own leftovers (temp files of atomic writes, `tempLeftovers`: host paths under
 * `root`, the --root of the run that left them) through the doors: recovery after a killed run,
 * once their removal is on the record. The door resolves each from that root without a link.
 */
export function removeLeftovers(settings: Settings, log: Logger, root: string, paths: string[]): void {
  const ctx = ApplyContext.create({ ...settings, root: root || '/' }, log, false);
  for (const p of paths) {
    if (root && !p.startsWith(root + '/')) continue;
    removePath(ctx, p.slice(root.length));
  }
}
