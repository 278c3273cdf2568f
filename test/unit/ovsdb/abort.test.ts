/**
 * An AbortSignal ends an OVSDB request at once (src/ovsdb/client.ts), against a real, private
 * ovsdb-server: a transaction blocked in a `wait` is rejected with the kind the core decides
 * retry by, the server is told to `cancel` it (so it never commits later), and the mutate door
 * of the ovs plugin (transactApply) passes the run's signal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { OvsdbClient, map, type Operation } from '../../../src/ovsdb/client.js';
import { OpdError } from '../../../src/core/errors.js';
import { ApplyContext } from '../../../src/core/plugin.js';
import { transactApply } from '../../../src/plugins/ovs/db.js';
import { startOvs, type OvsSandbox } from '../../helpers/ovs.js';

const DB = 'Open_vSwitch';
/** Far longer than any test may take: only an abort (or the bridge appearing) ends the wait. */
const LONG_WAIT_MS = 600_000;
let ovs: OvsSandbox;
let c: OvsdbClient;

beforeAll(async () => {
  ovs = await startOvs();
  c = await OvsdbClient.connect(ovs.db);
});
afterAll(async () => {
  c?.close();
  await ovs?.stop();
});

/** Waits until bridge `br` exists, then marks the root row with external_ids:`key`=yes. */
function blockedUntilBridge(br: string, key: string): Operation[] {
  return [
    {
      op: 'wait',
      table: 'Bridge',
      where: [['name', '==', br]],
      columns: ['name'],
      until: '==',
      rows: [{ name: br }],
      timeout: LONG_WAIT_MS,
    },
    { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['external_ids', 'insert', map({ [key]: 'yes' })]] },
  ];
}

async function marked(key: string): Promise<boolean> {
  const out = await ovs.vsctl(['--no-wait', 'get', 'Open_vSwitch', '.', 'external_ids']);
  return out.includes(`${key}=yes`);
}

async function errorOf(p: Promise<unknown>): Promise<OpdError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(OpdError);
  return e as OpdError;
}

describe('an aborted OVSDB request', () => {
  it('commits a blocked transaction once its wait holds when nothing aborts it (the control case)', async () => {
    const t = c.transact(DB, blockedUntilBridge('brctl', 'control'));
    await c.echo(); // answered after the server has taken up the transaction: it now waits
    await ovs.vsctl(['--no-wait', 'add-br', 'brctl']);
    await t;
    expect(await marked('control')).toBe(true);
  });

  it('rejects a blocked transaction at once when the run is stopped, as backend-failed, and it never commits later', async () => {
    const ac = new AbortController();
    const t = c.transact(DB, blockedUntilBridge('brstop', 'stopped'), { signal: ac.signal, timeoutMs: LONG_WAIT_MS });
    await c.echo();
    const t0 = Date.now();
    ac.abort();
    const err = await errorOf(t);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(err.kind).toBe('backend-failed');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^transact on the OVS database at unix:.* was stopped: the run was stopped$/);
    // the server was told to cancel: the wait holding now must not commit the forgotten transaction
    await ovs.vsctl(['--no-wait', 'add-br', 'brstop']);
    await c.echo();
    expect(await marked('stopped')).toBe(false);
    expect(c.closed).toBe(false);
  });

  it('rejects a blocked transaction whose time is up as backend-busy (retried by the core), and cancels it too', async () => {
    const t = c.transact(DB, blockedUntilBridge('brbusy', 'busy'), { timeoutMs: 300 });
    const err = await errorOf(t);
    expect(err.kind).toBe('backend-busy');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/transact on the OVS database at .* timed out/);
    await ovs.vsctl(['--no-wait', 'add-br', 'brbusy']);
    await c.echo();
    expect(await marked('busy')).toBe(false);
  });

  it('sends nothing for a signal that has already fired', async () => {
    const before = OvsdbClient.requests;
    const err = await errorOf(c.transact(DB, [{ op: 'comment', comment: 'x' }], { signal: AbortSignal.abort() }));
    expect(err.kind).toBe('backend-failed');
    expect(OvsdbClient.requests).toBe(before);
  });

  it('stops a monitor request and forgets its monitor', async () => {
    const ac = new AbortController();
    const m = c.monitor(DB, { Bridge: { columns: ['name'] } }, () => undefined, { signal: ac.signal });
    ac.abort();
    expect((await errorOf(m)).kind).toBe('backend-failed');
    // the same connection still answers, and a new monitor starts
    const m2 = await c.monitor(DB, { Bridge: { columns: ['name'] } }, () => undefined);
    expect(Object.keys(m2.initial.Bridge ?? {}).length).toBeGreaterThan(0);
    await m2.cancel();
  });

  it('cancels the ovs plugin’s transaction when the apply call’s time is up (transactApply passes ctx.signal)', async () => {
    const ctx = ApplyContext.create({ ovsDb: ovs.db }, pino({ level: 'silent' }), false, AbortSignal.timeout(300));
    const err = await errorOf(transactApply(ctx, blockedUntilBridge('brapply', 'applied'), LONG_WAIT_MS));
    expect(err.kind).toBe('backend-busy');
    await ovs.vsctl(['--no-wait', 'add-br', 'brapply']);
    expect(await marked('applied')).toBe(false);
  });
});
