/**
 * The OVSDB client (src/ovsdb/client.ts) against a real, private ovsdb-server (database only):
 * transact with every operation, monitor, echo, errors, and the stream framing; an AbortSignal
 * ends a request at once with the kind the core decides retry by, and a blocked transaction is
 * cancelled on the server (it never commits later); the ovs plugin's mutate door passes ctx.signal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  JsonSplitter,
  JsonStream,
  OvsdbClient,
  TransactError,
  decodeRow,
  map,
  namedUuid,
  parseUrl,
  set,
  uuid,
  type Operation,
  type TableUpdates,
} from '../../../src/ovsdb/client.js';
import { OpdError } from '../../../src/core/errors.js';
import { ApplyContext } from '../../../src/core/plugin.js';
import { transactApply } from '../../../src/plugins/ovs/db.js';
import { startOvs, type OvsSandbox } from '../../helpers/ovs.js';
import { tmp } from '../../helpers/opd.js';

const DB = 'Open_vSwitch';
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

/** Resolves with the first monitor update that satisfies pred. */
function nextUpdate(updates: TableUpdates[], pred: (u: TableUpdates) => boolean): Promise<TableUpdates> {
  return new Promise((resolve) => {
    const tick = () => {
      const hit = updates.find(pred);
      if (hit) resolve(hit);
      else setImmediate(tick);
    };
    tick();
  });
}

describe('the OVSDB client against a real ovsdb-server', () => {
  it('answers echo and lists the Open_vSwitch database', async () => {
    expect(await c.echo('ping', 1)).toEqual(['ping', 1]);
    expect(await c.listDbs()).toContain(DB);
  });

  it('inserts a bridge with its port and interface by named uuids in one transaction, and selects it back', async () => {
    const [root] = (await c.transact(DB, [{ op: 'select', table: 'Open_vSwitch', where: [], columns: ['_uuid'] }]))[0]
      .rows!;
    const r = await c.transact(DB, [
      { op: 'insert', table: 'Interface', row: { name: 'cbr0', type: 'internal' }, 'uuid-name': 'i' },
      {
        op: 'insert',
        table: 'Port',
        row: { name: 'cbr0', interfaces: namedUuid('i'), tag: 7, trunks: set([1, 2]) },
        'uuid-name': 'p',
      },
      {
        op: 'insert',
        table: 'Bridge',
        row: { name: 'cbr0', ports: set([namedUuid('p')]), external_ids: map({ opd_managed: 'true', role: 'x' }) },
        'uuid-name': 'b',
      },
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [['_uuid', '==', root._uuid]],
        mutations: [['bridges', 'insert', set([namedUuid('b')])]],
      },
      { op: 'comment', comment: 'client test' },
    ]);
    expect(r).toHaveLength(5);
    expect(r[2].uuid?.[0]).toBe('uuid');
    expect(r[3].count).toBe(1);
    const [sel] = await c.transact(DB, [
      { op: 'select', table: 'Bridge', where: [['name', '==', 'cbr0']], columns: ['name', 'external_ids', 'ports'] },
    ]);
    const row = decodeRow(sel.rows![0]);
    expect(row.name).toBe('cbr0');
    expect(row.external_ids).toEqual({ opd_managed: 'true', role: 'x' });
    expect(await ovs.vsctl(['--no-wait', 'get', 'Port', 'cbr0', 'tag'])).toBe('7');
    expect(await ovs.vsctl(['--no-wait', 'get', 'Port', 'cbr0', 'trunks'])).toBe('[1, 2]');
  });

  it('updates and mutates columns, with wait as a precondition', async () => {
    const r = await c.transact(DB, [
      {
        op: 'wait',
        table: 'Port',
        where: [['name', '==', 'cbr0']],
        columns: ['tag'],
        until: '==',
        rows: [{ tag: 7 }],
        timeout: 0,
      },
      { op: 'update', table: 'Port', where: [['name', '==', 'cbr0']], row: { tag: 9 } },
      {
        op: 'mutate',
        table: 'Port',
        where: [['name', '==', 'cbr0']],
        mutations: [
          ['trunks', 'insert', set([3])],
          ['external_ids', 'insert', map({ k: 'v' })],
        ],
      },
    ]);
    expect(r[1].count).toBe(1);
    expect(await ovs.vsctl(['--no-wait', 'get', 'Port', 'cbr0', 'tag'])).toBe('9');
    expect(await ovs.vsctl(['--no-wait', 'get', 'Port', 'cbr0', 'trunks'])).toBe('[1, 2, 3]');
    expect(await ovs.vsctl(['--no-wait', 'get', 'Port', 'cbr0', 'external_ids:k'])).toBe('v');
  });

  it('rejects a transaction whose wait does not hold and applies none of it', async () => {
    const t = c.transact(DB, [
      { op: 'update', table: 'Port', where: [['name', '==', 'cbr0']], row: { tag: 11 } },
      {
        op: 'wait',
        table: 'Port',
        where: [['name', '==', 'cbr0']],
        columns: ['tag'],
        until: '==',
        rows: [{ tag: 1234 }],
        timeout: 0,
      },
    ]);
    await expect(t).rejects.toBeInstanceOf(TransactError);
    await expect(t).rejects.toThrow(/operation 2 \(wait Port\): timed out/);
    expect(await ovs.vsctl(['--no-wait', 'get', 'Port', 'cbr0', 'tag'])).toBe('9');
  });

  it('names the commit when a constraint fails (a duplicate port name) and changes nothing', async () => {
    const before = await ovs.dump();
    const err = await c
      .transact(DB, [
        { op: 'insert', table: 'Interface', row: { name: 'cbr0x' }, 'uuid-name': 'i' },
        { op: 'insert', table: 'Port', row: { name: 'cbr0', interfaces: namedUuid('i') }, 'uuid-name': 'p' },
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['name', '==', 'cbr0']],
          mutations: [['ports', 'insert', set([namedUuid('p')])]],
        },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactError);
    expect((err as TransactError).error).toBe('constraint violation');
    expect((err as TransactError).message).toMatch(/at the commit: constraint violation/);
    expect(await ovs.dump()).toBe(before);
  });

  it('streams inserts, modifications and deletes to a monitor, and stops after cancel', async () => {
    const updates: TableUpdates[] = [];
    const m = await c.monitor(DB, { Port: { columns: ['name', 'tag'] } }, (u) => updates.push(u));
    expect(Object.values(m.initial.Port ?? {}).map((r) => r.new?.name)).toContain('cbr0');
    await ovs.vsctl(['--no-wait', 'set', 'Port', 'cbr0', 'tag=12']);
    const mod = await nextUpdate(updates, (u) => Object.values(u.Port ?? {}).some((r) => r.new?.tag === 12));
    expect(Object.values(mod.Port)[0].old).toEqual({ tag: 9 });
    await ovs.vsctl(['--no-wait', 'add-port', 'cbr0', 'cp1']);
    await nextUpdate(updates, (u) => Object.values(u.Port ?? {}).some((r) => r.new?.name === 'cp1' && !r.old));
    await ovs.vsctl(['--no-wait', 'del-port', 'cbr0', 'cp1']);
    await nextUpdate(updates, (u) => Object.values(u.Port ?? {}).some((r) => r.old?.name === 'cp1' && !r.new));
    await m.cancel();
    const n = updates.length;
    await ovs.vsctl(['--no-wait', 'set', 'Port', 'cbr0', 'tag=13']);
    await c.echo(); // a round trip after the change: an update would have come before its answer
    expect(updates.length).toBe(n);
  });

  it('deletes rows, and an unreferenced child is collected with its parent', async () => {
    const [root] = (
      await c.transact(DB, [{ op: 'select', table: 'Open_vSwitch', where: [], columns: ['_uuid', 'bridges'] }])
    )[0].rows!;
    const [br] = (
      await c.transact(DB, [{ op: 'select', table: 'Bridge', where: [['name', '==', 'cbr0']], columns: ['_uuid'] }])
    )[0].rows!;
    const r = await c.transact(DB, [
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [['_uuid', '==', root._uuid]],
        mutations: [['bridges', 'delete', set([br._uuid as ['uuid', string]])]],
      },
      { op: 'delete', table: 'Bridge', where: [['_uuid', '==', br._uuid]] },
    ]);
    expect(r[1].count).toBe(1);
    const [ports] = await c.transact(DB, [
      { op: 'select', table: 'Port', where: [['name', '==', 'cbr0']], columns: ['name'] },
    ]);
    expect(ports.rows).toEqual([]);
  });

  it('reads thousands of rows in one answer that arrives in many chunks', async () => {
    // rows of non-root tables live only while referenced: 3000 ports, each with its interface, on one bridge
    await ovs.vsctl(['--no-wait', 'add-br', 'bulkbr']);
    const ops: Operation[] = [];
    for (let i = 0; i < 3000; i++) {
      ops.push({
        op: 'insert',
        table: 'Interface',
        row: { name: `bulk${i}`, external_ids: map({ note: 'é✓"\\'.repeat(4) }) },
        'uuid-name': `i${i}`,
      });
      ops.push({
        op: 'insert',
        table: 'Port',
        row: { name: `bulk${i}`, interfaces: namedUuid(`i${i}`) },
        'uuid-name': `p${i}`,
      });
    }
    ops.push({
      op: 'mutate',
      table: 'Bridge',
      where: [['name', '==', 'bulkbr']],
      mutations: [['ports', 'insert', set(Array.from({ length: 3000 }, (_, i) => namedUuid(`p${i}`)))]],
    });
    await c.transact(DB, ops);
    const [sel] = await c.transact(DB, [
      { op: 'select', table: 'Interface', where: [], columns: ['name', 'external_ids'] },
    ]);
    const rows = sel.rows!.map(decodeRow);
    expect(rows.filter((r) => /^bulk\d+$/.test(String(r.name)))).toHaveLength(3000);
    expect(rows.find((r) => r.name === 'bulk2999')?.external_ids).toEqual({ note: 'é✓"\\'.repeat(4) });
  });

  it('refuses an unknown database with the server’s words', async () => {
    await expect(c.transact('NoSuchDb', [{ op: 'comment', comment: 'x' }])).rejects.toThrow(
      /refused transact: unknown database/,
    );
  });

  it('says it cannot reach a socket that does not exist, as backend-unavailable', async () => {
    const err = await OvsdbClient.connect(`unix:${tmp()}/none.sock`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpdError);
    expect((err as OpdError).kind).toBe('backend-unavailable');
    expect((err as OpdError).message).toMatch(/cannot reach the OVS database at unix:.*none\.sock \(no such socket\)/);
  });

  it('fails pending requests and reports a lost connection when the server dies', async () => {
    const dir = tmp();
    const sock = join(dir, 's.sock');
    // a server that accepts, reads a request and dies without answering
    const srv = createServer((s) => s.once('data', () => s.destroy()));
    await new Promise<void>((r) => srv.listen(sock, r));
    const cl = await OvsdbClient.connect(`unix:${sock}`);
    let lost: OpdError | undefined;
    cl.onClose((e) => (lost = e));
    const err = await cl.echo().catch((e: unknown) => e);
    srv.close();
    expect((err as OpdError).kind).toBe('backend-unavailable');
    expect((err as OpdError).message).toMatch(/lost the connection to the OVS database/);
    expect(lost?.kind).toBe('backend-unavailable');
    expect(cl.closed).toBe(true);
    await expect(cl.echo()).rejects.toThrow(/lost the connection/);
  });

  it('answers the server’s echo requests (keep-alive) while it waits', async () => {
    const dir = tmp();
    const sock = join(dir, 'e.sock');
    const seen: unknown[] = [];
    const srv = createServer((s) => {
      const split = new JsonSplitter((t) => {
        const m = JSON.parse(t);
        seen.push(m);
        if (m.method === 'echo' && m.id !== 'srv-1')
          s.write(JSON.stringify({ id: 'srv-1', method: 'echo', params: ['hb'] }));
        if (m.id === 'srv-1') s.write(JSON.stringify({ id: 1, result: ['done'], error: null }));
      });
      s.on('data', (b) => split.push(b.toString()));
    });
    await new Promise<void>((r) => srv.listen(sock, r));
    const cl = await OvsdbClient.connect(`unix:${sock}`);
    expect(await cl.echo('x')).toEqual(['done']);
    cl.close();
    srv.close();
    expect(seen).toContainEqual({ id: 'srv-1', result: ['hb'], error: null });
  });
});

/** Far longer than any test may take: only an abort (or the bridge appearing) ends the wait. */
const LONG_WAIT_MS = 600_000;
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

describe('the JSON stream framing', () => {
  it('splits texts that arrive glued together or cut anywhere, strings with braces and escapes included', () => {
    const texts = [{ a: '}{', b: ['[', '"\\'] }, [1, { c: 'x\\"}' }], { id: 3, result: null }];
    const stream = texts.map((t) => JSON.stringify(t)).join(' \n');
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: unknown[] = [];
      const s = new JsonSplitter((t) => got.push(JSON.parse(t)));
      s.push(stream.slice(0, cut));
      s.push(stream.slice(cut));
      expect(got).toEqual(texts);
    }
  });

  it('reads messages with JSON.parse whether they arrive whole, glued together or cut anywhere', () => {
    const texts = [{ a: '}{', b: ['[', '"\\'] }, [1, { c: 'x\\"}' }], { id: 3, result: null }];
    const stream = texts.map((t) => JSON.stringify(t)).join(' \n');
    for (let cut = 0; cut <= stream.length; cut++)
      for (let cut2 = cut; cut2 <= stream.length; cut2 += 7) {
        const got: unknown[] = [];
        const s = new JsonStream((v) => got.push(v));
        s.push(stream.slice(0, cut));
        s.push(stream.slice(cut, cut2));
        s.push(stream.slice(cut2));
        expect(got).toEqual(texts);
      }
  });

  it('hands what JSON.parse cannot read to the exact splitter, which refuses text between messages', () => {
    const got: unknown[] = [];
    const s = new JsonStream((v) => got.push(v));
    expect(() => s.push('{"a":1} x {"b":2}')).toThrow(/unexpected text "x/);
    expect(got).toEqual([{ a: 1 }]);
  });

  it('refuses anything but whitespace between texts, also a stray closing bracket', () => {
    expect(() => new JsonSplitter(() => undefined).push('{"a":1} x {"b":2}')).toThrow(/unexpected text "x/);
    expect(() => new JsonSplitter(() => undefined).push('{"a":1}}')).toThrow(/unexpected text/);
    const got: string[] = [];
    const s = new JsonSplitter((t) => got.push(t));
    s.push('{"a":"\\');
    s.push('"}"}\r\n\t[1]');
    expect(got.map((t) => JSON.parse(t))).toEqual([{ a: '"}' }, [1]]);
  });

  it('parses unix: and tcp: addresses and refuses others', () => {
    expect(parseUrl('unix:/run/openvswitch/db.sock')).toEqual({ path: '/run/openvswitch/db.sock' });
    expect(parseUrl('tcp:127.0.0.1:6640')).toEqual({ host: '127.0.0.1', port: 6640 });
    expect(parseUrl('tcp:[::1]:6640')).toEqual({ host: '::1', port: 6640 });
    expect(() => parseUrl('ssl:1.2.3.4:6640')).toThrow(/unsupported OVSDB address/);
  });

  it('encodes rows the way ovsdb-server decodes them', () => {
    expect(map({ b: 2, a: 'x' })).toEqual([
      'map',
      [
        ['a', 'x'],
        ['b', '2'],
      ],
    ]);
    expect(decodeRow({ u: uuid('abc'), s: set([1, 2]), m: map({ k: 'v' }), x: 'plain' })).toEqual({
      u: 'abc',
      s: [1, 2],
      m: { k: 'v' },
      x: 'plain',
    });
  });
});
