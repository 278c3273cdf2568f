/** The core's apply scheduler: dependency skips, batching, concurrency, transactions, retries by kind, refusal. */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { applyPlan } from '../../../src/core/apply.js';
import { buildPlan } from '../../../src/core/plan.js';
import { OpdError } from '../../../src/core/errors.js';
import {
  applyEach,
  type ApplyContext,
  type Change,
  type ChangeResult,
  type Plugin,
  type ResourceDiff,
} from '../../../src/core/plugin.js';

const log = pino({ level: 'silent' });

interface Step {
  fail?: string;
}

/** A plugin whose plan turns each diff's desired `steps` into changes and whose apply records the batches it got. */
function fake(
  name: string,
  extra: Partial<Plugin> & {
    onApply?: (batch: Change<Step>[], ctx: ApplyContext) => Promise<ChangeResult[] | void>;
  } = {},
) {
  const batches: string[][] = [];
  const plugin: Plugin<Record<string, never>, Step> = {
    name,
    schema: {},
    collections: ['things'],
    read: async () => ({}),
    plan: (d: ResourceDiff) =>
      (d.desired!.steps as (Change<Step> & { after?: string[] })[]).map((c) => ({
        resource: d.address,
        plugin: name,
        action: 'update',
        summary: '',
        ...c,
      })),
    async apply(ctx, batch) {
      batches.push(batch.map((c) => c.address));
      const r = await extra.onApply?.(batch, ctx);
      if (r) return r;
      return batch.map((c) =>
        c.data?.fail
          ? {
              address: c.address,
              status: 'failed' as const,
              error: new OpdError(c.data.fail as 'backend-failed', `${c.address} broke`),
            }
          : { address: c.address, status: 'ok' as const },
      );
    },
    ...extra,
  };
  return { plugin, batches };
}

function planOf(plugins: Map<string, Plugin>, name: string, steps: object[], allowDestroy = false) {
  const d: ResourceDiff = {
    plugin: name,
    collection: 'things',
    name: 'a',
    address: `${name}/things/a`,
    action: 'update',
    current: {},
    desired: { steps },
    ops: [],
    allowDestroy,
  };
  return buildPlan(plugins, [d], []);
}

const statuses = (out: { change: { address: string }; status: string }[]) =>
  Object.fromEntries(out.map((o) => [o.change.address, o.status]));

describe('the core applies a plan', () => {
  it('hands a plugin only changes whose dependencies succeeded, one ready batch per wave', async () => {
    const { plugin, batches } = fake('p');
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const plan = planOf(plugins, 'p', [{ address: 'x' }, { address: 'y' }, { address: 'z', after: ['x'] }]);
    const out = await applyPlan(plan, plugins, { settings: {}, log, allowDestroy: false });
    expect(statuses(out)).toEqual({ x: 'ok', y: 'ok', z: 'ok' });
    expect(batches).toEqual([['x', 'y'], ['z']]);
  });

  it('skips what depends on a failed change and goes on with independent changes', async () => {
    const { plugin, batches } = fake('p');
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const plan = planOf(plugins, 'p', [
      { address: 'x', data: { fail: 'backend-failed' } },
      { address: 'y' },
      { address: 'z', after: ['x'] },
      { address: 'w', after: ['z'] },
    ]);
    const out = await applyPlan(plan, plugins, { settings: {}, log, allowDestroy: false });
    expect(statuses(out)).toEqual({ x: 'failed', y: 'ok', z: 'skipped', w: 'skipped' });
    expect(batches.flat()).not.toContain('z');
  });

  it('never attempts a refused change and skips its dependents', async () => {
    const { plugin, batches } = fake('p');
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const plan = planOf(plugins, 'p', [
      { address: 'x', refused: 'the backend cannot do that' },
      { address: 'y', after: ['x'] },
      { address: 'd', destructive: true },
    ]);
    const out = await applyPlan(plan, plugins, { settings: {}, log, allowDestroy: false });
    expect(statuses(out)).toEqual({ x: 'refused', y: 'skipped', d: 'refused' });
    expect(out.find((o) => o.change.address === 'x')!.error!.kind).toBe('refused');
    expect(batches).toEqual([]);
  });

  it('retries a change whose error kind is transient, and not one whose kind is final', async () => {
    let calls = 0;
    const { plugin } = fake('p', {
      onApply: async (batch) => {
        calls++;
        return batch.map((c) =>
          c.address === 'busy' && calls < 2
            ? { address: c.address, status: 'failed' as const, error: new OpdError('backend-busy', 'locked') }
            : c.address === 'bad'
              ? { address: c.address, status: 'failed' as const, error: new OpdError('backend-failed', 'no') }
              : { address: c.address, status: 'ok' as const },
        );
      },
    });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const out = await applyPlan(planOf(plugins, 'p', [{ address: 'busy' }, { address: 'bad' }]), plugins, {
      settings: {},
      log,
      allowDestroy: false,
      backoffMs: 1,
    });
    expect(statuses(out)).toEqual({ busy: 'ok', bad: 'failed' });
    expect(out.find((o) => o.change.address === 'busy')!.attempts).toBe(2);
    expect(out.find((o) => o.change.address === 'bad')!.attempts).toBe(1);
  });

  it('runs up to the declared concurrency side by side, one change per call', async () => {
    let now = 0;
    let peak = 0;
    const { plugin, batches } = fake('p', {
      concurrency: 2,
      onApply: async () => {
        peak = Math.max(peak, ++now);
        await new Promise((r) => setImmediate(r));
        now--;
      },
    });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const steps = ['a', 'b', 'c', 'd'].map((n) => ({ address: n, resource: `p/things/${n}` }));
    const out = await applyPlan(planOf(plugins, 'p', steps), plugins, { settings: {}, log, allowDestroy: false });
    expect(Object.values(statuses(out))).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(peak).toBe(2);
    expect(batches.every((b) => b.length === 1)).toBe(true);
  });

  it('hands a transaction its dependencies along, and retries one change at a time when the whole transaction fails', async () => {
    const { plugin, batches } = fake('p', {
      transaction: true,
      onApply: async (batch) => {
        if (batch.some((c) => c.data?.fail)) throw new OpdError('backend-failed', 'transaction refused');
      },
    });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const plan = planOf(plugins, 'p', [
      { address: 'br' },
      { address: 'br/p1', after: ['br'], data: { fail: 'x' } },
      { address: 'br/p2', after: ['br'] },
      { address: 'br/p1/x', after: ['br/p1'] },
    ]);
    const out = await applyPlan(plan, plugins, { settings: {}, log, allowDestroy: false });
    expect(statuses(out)).toEqual({ br: 'ok', 'br/p1': 'failed', 'br/p2': 'ok', 'br/p1/x': 'skipped' });
    expect(batches[0]).toEqual(['br', 'br/p1', 'br/p1/x', 'br/p2']);
    expect(batches.slice(1).every((b) => b.length === 1)).toBe(true);
  });

  it('gives every call an AbortSignal that fires when the call takes too long', async () => {
    const { plugin } = fake('p', {
      onApply: (_batch, ctx) =>
        new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const out = await applyPlan(planOf(plugins, 'p', [{ address: 'slow' }]), plugins, {
      settings: {},
      log,
      allowDestroy: false,
      timeoutMs: 20,
      retries: 0,
    });
    expect(out[0].status).toBe('failed');
    expect(out[0].error!.message).toMatch(/timed out after 20 ms/);
  });

  it('calls a plugin’s flush once after its last batch', async () => {
    let flushed = 0;
    const { plugin } = fake('p', { flush: async () => void flushed++ });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    await applyPlan(planOf(plugins, 'p', [{ address: 'x' }, { address: 'y', after: ['x'] }]), plugins, {
      settings: {},
      log,
      allowDestroy: false,
    });
    expect(flushed).toBe(1);
  });

  it('reports a plugin’s changes to onOutcome (the audit trail) as failed, never ok, when its flush fails', async () => {
    const { plugin } = fake('p', {
      flush: async () => {
        throw new OpdError('backend-failed', 'Reload failed');
      },
    });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const seen: string[] = [];
    const out = await applyPlan(planOf(plugins, 'p', [{ address: 'x' }, { address: 'y', after: ['x'] }]), plugins, {
      settings: {},
      log,
      allowDestroy: false,
      onOutcome: (o) => seen.push(`${o.change.address}:${o.status}:${o.error?.message ?? ''}`),
    });
    expect(statuses(out)).toEqual({ x: 'failed', y: 'failed' });
    expect(seen).toEqual(['x:failed:Reload failed', 'y:failed:Reload failed']);
  });

  it('reports a plugin’s changes as ok once its flush succeeded', async () => {
    const order: string[] = [];
    const { plugin } = fake('p', { flush: async () => void order.push('flush') });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    await applyPlan(planOf(plugins, 'p', [{ address: 'x' }]), plugins, {
      settings: {},
      log,
      allowDestroy: false,
      onOutcome: (o) => order.push(`${o.change.address}:${o.status}`),
    });
    expect(order).toEqual(['flush', 'x:ok']);
  });
});

describe('the core announces and stops waves', () => {
  it('announces every change of a batch before the plugin gets it, once each', async () => {
    const order: string[] = [];
    const { plugin } = fake('p', {
      onApply: async (batch) => void order.push(`apply ${batch.map((c) => c.address).join(',')}`),
    });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    await applyPlan(
      planOf(plugins, 'p', [{ address: 'x' }, { address: 'y' }, { address: 'z', after: ['x'] }]),
      plugins,
      {
        settings: {},
        log,
        allowDestroy: false,
        onIntent: (chs) => order.push(`intent ${chs.map((c) => c.address).join(',')}`),
      },
    );
    expect(order).toEqual(['intent x,y', 'apply x,y', 'intent z', 'apply z']);
  });

  it('announces a transaction’s changes once when it hands them over one at a time', async () => {
    const intents: string[] = [];
    let calls = 0;
    const { plugin } = fake('p', {
      transaction: true,
      onApply: async (batch) => {
        calls++;
        if (batch.length > 1) throw new OpdError('backend-failed', 'the transaction failed');
      },
    });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    await applyPlan(planOf(plugins, 'p', [{ address: 'x' }, { address: 'y' }]), plugins, {
      settings: {},
      log,
      allowDestroy: false,
      onIntent: (chs) => intents.push(...chs.map((c) => c.address)),
    });
    expect(calls).toBe(3);
    expect(intents).toEqual(['x', 'y']);
  });

  it('starts no new change once stopped, lets the one in flight finish, and marks the rest not started', async () => {
    const stop = new AbortController();
    const { plugin, batches } = fake('p', {
      onApply: async (batch) => {
        if (batch[0].address === 'x') stop.abort('SIGINT');
      },
    });
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const out = await applyPlan(
      planOf(plugins, 'p', [{ address: 'x' }, { address: 'y', after: ['x'] }, { address: 'z', after: ['y'] }]),
      plugins,
      { settings: {}, log, allowDestroy: false, stop: stop.signal },
    );
    expect(batches).toEqual([['x']]);
    expect(statuses(out)).toEqual({ x: 'ok', y: 'skipped', z: 'skipped' });
    expect(out.filter((o) => o.notStarted).map((o) => o.change.address)).toEqual(['y', 'z']);
    expect(out[1].error?.message).toBe('not started: the run was stopped (SIGINT)');
  });

  it('takes the not-started rest of a batch applied step by step as skipped, never as failed', async () => {
    const stop = new AbortController();
    const plugin: Plugin = {
      name: 'p',
      schema: {},
      collections: ['things'],
      read: async () => ({}),
      plan: fake('p').plugin.plan,
      apply: applyEach(async (_ctx, c) => {
        if (c.address === 'x') stop.abort('SIGTERM');
      }),
    };
    const plugins = new Map<string, Plugin>([['p', plugin]]);
    const out = await applyPlan(
      planOf(plugins, 'p', [{ address: 'x' }, { address: 'y' }, { address: 'z', after: ['y'] }]),
      plugins,
      { settings: {}, log, allowDestroy: false, stop: stop.signal },
    );
    expect(statuses(out)).toEqual({ x: 'ok', y: 'skipped', z: 'skipped' });
    // z waited for y, which the stop left unstarted: not started either
    expect(out.filter((o) => o.notStarted).map((o) => o.change.address)).toEqual(['y', 'z']);
  });
});
