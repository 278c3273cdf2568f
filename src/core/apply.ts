/**
 * Apply a plan: in dependency order, a plugin's ready changes as one batch, plugins in
 * parallel; retries with capped exponential backoff for retryable errors; a failed change
 * skips what depends on it while independent changes go on.
 */
import type { Logger } from 'pino';
import { ApplyContext, type ChangeResult, type Plugin, type Settings } from './plugin.js';
import type { Plan, PlannedChange } from './plan.js';
import { OpdError, toOpdError } from './errors.js';

export type Outcome = 'ok' | 'failed' | 'skipped' | 'refused' | 'pending';

export interface ChangeOutcome {
  change: PlannedChange;
  status: Outcome;
  error?: OpdError;
  attempts: number;
  /** What the change printed (exec), for the audit trail; secrets are scrubbed there. */
  output?: string;
}

export interface ApplyOptions {
  settings: Settings;
  log: Logger;
  allowDestroy: boolean;
  retries?: number;
  backoffMs?: number;
  backoffCapMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called once per change as soon as its outcome is known (audit, progress). */
  onOutcome?: (o: ChangeOutcome) => void;
  /** Called after each wave of batches (the audit flushes its entries here). */
  onWave?: () => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new OpdError('backend-failed', `${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

export async function applyPlan(plan: Plan, plugins: Map<string, Plugin>, opts: ApplyOptions): Promise<ChangeOutcome[]> {
  const ctx = ApplyContext.create(opts.settings, opts.log, opts.allowDestroy);
  const retries = opts.retries ?? 2;
  const base = opts.backoffMs ?? 200;
  const cap = opts.backoffCapMs ?? 5_000;
  const timeout = opts.timeoutMs ?? 600_000;
  const out: ChangeOutcome[] = plan.changes.map((change) => ({ change, status: 'pending', attempts: 0 }));
  const settle = (o: ChangeOutcome, status: Outcome, error?: OpdError) => {
    o.status = status;
    if (error) o.error = error;
    opts.onOutcome?.(o);
  };
  for (const o of out) if (o.change.refused) settle(o, 'refused', new OpdError('refused', o.change.refused, { address: o.change.address }));
  const propagate = () => {
    for (const o of out) {
      if (o.status !== 'pending') continue;
      const bad = o.change.deps.map((d) => out[d]).find((d) => d.status === 'failed' || d.status === 'skipped' || d.status === 'refused');
      if (bad) settle(o, 'skipped', new OpdError('dependency-failed', `skipped: ${bad.change.address} (${bad.change.action}) ${bad.status}`, { address: o.change.address }));
    }
  };
  propagate();
  opts.onWave?.();
  for (;;) {
    const pending = out.filter((o) => o.status === 'pending');
    if (!pending.length) break;
    if (opts.signal?.aborted) {
      for (const o of pending) settle(o, 'skipped', new OpdError('dependency-failed', 'skipped: the run was stopped', { address: o.change.address }));
      break;
    }
    const batch = new Set<number>();
    for (const o of pending) {
      const ok = o.change.deps.every((d) => out[d].status === 'ok' || (batch.has(d) && out[d].change.plugin === o.change.plugin));
      if (ok) batch.add(o.change.id);
    }
    if (!batch.size) throw new OpdError('bug', 'apply made no progress (unsatisfiable dependencies)');
    const byPlugin = new Map<string, ChangeOutcome[]>();
    for (const id of [...batch].sort((a, b) => a - b)) {
      const o = out[id];
      const l = byPlugin.get(o.change.plugin) ?? [];
      l.push(o);
      byPlugin.set(o.change.plugin, l);
    }
    await Promise.all(
      [...byPlugin].map(async ([name, list]) => {
        const plugin = plugins.get(name)!;
        let todo = list;
        for (let attempt = 0; todo.length; attempt++) {
          let results: ChangeResult[];
          try {
            todo.forEach((o) => o.attempts++);
            results = await withTimeout(plugin.apply(ctx, todo.map((o) => o.change)), timeout, `${name} apply`);
          } catch (err) {
            const e = toOpdError(err);
            results = todo.map((o) => ({ address: o.change.address, status: 'failed' as const, error: e }));
          }
          const byAddr = new Map<string, ChangeResult[]>();
          for (const r of results) byAddr.set(r.address, [...(byAddr.get(r.address) ?? []), r]);
          const retry: ChangeOutcome[] = [];
          for (const o of todo) {
            const r = byAddr.get(o.change.address)?.shift();
            if (!r) {
              settle(o, 'failed', new OpdError('bug', `${name} plugin returned no result for ${o.change.address}`));
              continue;
            }
            if (r.output !== undefined) o.output = r.output;
            if (r.status === 'ok') settle(o, 'ok');
            else if (r.error?.retryable && attempt < retries) retry.push(o);
            else settle(o, 'failed', r.error ?? new OpdError('backend-failed', `${o.change.address} failed`));
          }
          todo = retry;
          if (todo.length) {
            const wait = Math.min(cap, base * 2 ** attempt);
            opts.log.warn({ plugin: name, changes: todo.length, wait }, 'retrying after a transient error');
            await sleep(wait);
          }
        }
      }),
    );
    propagate();
    opts.onWave?.();
  }
  return out;
}
