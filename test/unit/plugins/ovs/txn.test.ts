/**
 * OVS commands as one OVSDB transaction (src/plugins/ovs/txn.ts): pure, on a snapshot of names
 * and uuids. Fixtures: the transaction is a pure function of the snapshot and the commands.
 */
import { describe, expect, it } from 'vitest';
import { TxnBuilder, type Snapshot } from '../../../../src/plugins/ovs/txn.js';
import type { OvsCmd } from '../../../../src/plugins/ovs/plan.js';

const snap: Snapshot = {
  root: 'R',
  bridges: [{ uuid: 'B0', name: 'br0', ports: ['P0', 'P1', 'P2'] }],
  ports: [
    { uuid: 'P0', name: 'br0', interfaces: ['I0'] },
    { uuid: 'P1', name: 'p1', interfaces: ['I1'] },
    { uuid: 'P2', name: 'bond0', interfaces: ['I2', 'I3'] },
  ],
  ifaces: [
    { uuid: 'I0', name: 'br0' },
    { uuid: 'I1', name: 'p1' },
    { uuid: 'I2', name: 'm1' },
    { uuid: 'I3', name: 'm2' },
  ],
};

function txn(cmds: OvsCmd[]) {
  const b = new TxnBuilder(snap);
  for (const c of cmds) b.add(c);
  return b.operations();
}

describe('OVS commands as one OVSDB transaction', () => {
  it("sets an existing bridge's controllers as new Controller rows that replace its references (the old rows go with them)", () => {
    const ops = txn([{ op: 'set-controller', bridge: 'br0', targets: ['tcp:127.0.0.1:6653', 'tcp:127.0.0.1:6654'] }]);
    expect(ops).toEqual([
      { op: 'insert', table: 'Controller', row: { target: 'tcp:127.0.0.1:6653' }, 'uuid-name': 'ctl1' },
      { op: 'insert', table: 'Controller', row: { target: 'tcp:127.0.0.1:6654' }, 'uuid-name': 'ctl2' },
      {
        op: 'update',
        table: 'Bridge',
        where: [['_uuid', '==', ['uuid', 'B0']]],
        row: {
          controller: [
            'set',
            [
              ['named-uuid', 'ctl1'],
              ['named-uuid', 'ctl2'],
            ],
          ],
        },
      },
    ]);
  });

  it("gives a bridge created in the same transaction its controller in the bridge's own insert", () => {
    const ops = txn([
      { op: 'add-br', bridge: 'br1', cols: {} },
      { op: 'set-controller', bridge: 'br1', targets: ['tcp:127.0.0.1:6653'] },
    ]);
    const br = ops.find((o) => o.op === 'insert' && o.table === 'Bridge') as { row: Record<string, unknown> };
    const ctl = ops.find((o) => o.op === 'insert' && o.table === 'Controller') as Record<string, unknown>;
    expect(br.row.controller).toEqual(['set', [['named-uuid', ctl['uuid-name']]]]);
    expect(ctl.row).toEqual({ target: 'tcp:127.0.0.1:6653' });
    expect(() => txn([{ op: 'set-controller', bridge: 'nope', targets: [] }])).toThrow(/no bridge named nope/);
  });

  it('creates a bridge with its local port and a new port as named-uuid inserts referenced from their parents', () => {
    const ops = txn([
      { op: 'add-br', bridge: 'br1', cols: { datapath_type: 'netdev', external_ids: { opd_managed: 'true' } } },
      {
        op: 'add-port',
        bridge: 'br1',
        port: 'v1',
        cols: { tag: 10, trunks: [1, 2] },
        ifaces: { v1: { type: 'internal' } },
      },
    ]);
    const inserts = ops.filter((o) => o.op === 'insert');
    expect(inserts.map((o) => `${o.table}:${(o as { row: { name: string } }).row.name}`)).toEqual([
      'Interface:br1',
      'Port:br1',
      'Bridge:br1',
      'Port:v1',
      'Interface:v1',
    ]);
    const br = inserts.find((o) => o.table === 'Bridge') as { row: Record<string, unknown> };
    expect(br.row.datapath_type).toBe('netdev');
    expect(br.row.external_ids).toEqual(['map', [['opd_managed', 'true']]]);
    expect((br.row.ports as [string, unknown[]])[1]).toHaveLength(2);
    const port = inserts.find((o) => (o as { row: { name: string } }).row.name === 'v1' && o.table === 'Port') as {
      row: Record<string, unknown>;
    };
    expect(port.row.tag).toBe(10);
    expect(port.row.trunks).toEqual(['set', [1, 2]]);
    expect(ops.filter((o) => o.op === 'mutate')).toEqual([
      {
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [['_uuid', '==', ['uuid', 'R']]],
        mutations: [['bridges', 'insert', ['set', [['named-uuid', 'row3']]]]],
      },
    ]);
  });

  it('adds ports to an existing bridge with one mutation of its ports, whatever their number', () => {
    const cmds: OvsCmd[] = Array.from({ length: 50 }, (_, i) => ({
      op: 'add-port',
      bridge: 'br0',
      port: `n${i}`,
      cols: {},
      ifaces: { [`n${i}`]: {} },
    }));
    const ops = txn(cmds);
    const mutates = ops.filter((o) => o.op === 'mutate');
    expect(mutates).toHaveLength(1);
    expect(mutates[0]).toMatchObject({ table: 'Bridge', where: [['_uuid', '==', ['uuid', 'B0']]] });
    expect(ops.filter((o) => o.op === 'insert')).toHaveLength(100);
  });

  it('deletes a port with its interfaces and unreferences it, then recreates it under the same name', () => {
    const ops = txn([
      { op: 'del-port', bridge: 'br0', port: 'p1' },
      { op: 'add-port', bridge: 'br0', port: 'p1', cols: { tag: 5 }, ifaces: { p1: {} } },
    ]);
    expect(ops.filter((o) => o.op === 'delete').map((o) => (o as { where: unknown[][] }).where[0][2])).toEqual([
      ['uuid', 'I1'],
      ['uuid', 'P1'],
    ]);
    const m = ops.find((o) => o.op === 'mutate') as { mutations: unknown[] };
    expect(m.mutations).toEqual([
      ['ports', 'delete', ['set', [['uuid', 'P1']]]],
      ['ports', 'insert', ['set', [['named-uuid', 'row1']]]],
    ]);
  });

  it('sets map keys on existing rows by deleting then inserting the key, and whole columns by update', () => {
    const ops = txn([
      { op: 'set', table: 'Port', name: 'p1', col: 'tag', value: 20 },
      { op: 'set', table: 'Port', name: 'p1', col: 'external_ids', key: 'a', value: 'x' },
      { op: 'remove', table: 'Port', name: 'p1', col: 'external_ids', key: 'b' },
      { op: 'set', table: 'Interface', name: 'p1', col: 'options', key: 'peer', value: 'q' },
    ]);
    expect(ops).toEqual([
      { op: 'update', table: 'Port', where: [['_uuid', '==', ['uuid', 'P1']]], row: { tag: 20 } },
      {
        op: 'mutate',
        table: 'Port',
        where: [['_uuid', '==', ['uuid', 'P1']]],
        mutations: [
          ['external_ids', 'delete', ['set', ['a', 'b']]],
          ['external_ids', 'insert', ['map', [['a', 'x']]]],
        ],
      },
      {
        op: 'mutate',
        table: 'Interface',
        where: [['_uuid', '==', ['uuid', 'I1']]],
        mutations: [
          ['options', 'delete', ['set', ['peer']]],
          ['options', 'insert', ['map', [['peer', 'q']]]],
        ],
      },
    ]);
  });

  it('changes bond membership: a new member is inserted into the port, a removed one deleted', () => {
    const ops = txn([
      { op: 'add-bond-iface', port: 'bond0', iface: 'm3', cols: { type: 'internal' } },
      { op: 'del-bond-iface', port: 'bond0', iface: 'm1' },
    ]);
    expect(ops.find((o) => o.op === 'insert')).toMatchObject({
      table: 'Interface',
      row: { name: 'm3', type: 'internal' },
    });
    expect(ops.find((o) => o.op === 'mutate')).toMatchObject({
      table: 'Port',
      mutations: [
        ['interfaces', 'delete', ['set', [['uuid', 'I2']]]],
        ['interfaces', 'insert', ['set', [['named-uuid', 'row1']]]],
      ],
    });
    expect(ops.find((o) => o.op === 'delete')).toMatchObject({
      table: 'Interface',
      where: [['_uuid', '==', ['uuid', 'I2']]],
    });
  });

  it('deletes a bridge with every port and interface it holds', () => {
    const ops = txn([{ op: 'del-br', bridge: 'br0' }]);
    expect(
      ops
        .filter((o) => o.op === 'delete')
        .map((o) => o.table)
        .sort(),
    ).toEqual(['Bridge', 'Interface', 'Interface', 'Interface', 'Interface', 'Port', 'Port', 'Port']);
    expect(ops.find((o) => o.op === 'mutate')).toMatchObject({
      table: 'Open_vSwitch',
      mutations: [['bridges', 'delete', ['set', [['uuid', 'B0']]]]],
    });
  });

  it('refuses what ovs-vsctl refuses, in its words', () => {
    expect(() => txn([{ op: 'add-br', bridge: 'br0', cols: {} }])).toThrow(
      'cannot create a bridge named br0 because a bridge named br0 already exists',
    );
    expect(() => txn([{ op: 'add-port', bridge: 'br0', port: 'p1', cols: {}, ifaces: { p1: {} } }])).toThrow(
      'cannot create a port named p1 because a port named p1 already exists on bridge br0',
    );
    expect(() => txn([{ op: 'add-port', bridge: 'nobr', port: 'x', cols: {}, ifaces: { x: {} } }])).toThrow(
      'no bridge named nobr',
    );
    expect(() => txn([{ op: 'add-port', bridge: 'br0', port: 'b2', cols: {}, ifaces: { m1: {}, z: {} } }])).toThrow(
      /cannot create an interface named m1 .* port bond0 already has an interface named m1/,
    );
    expect(() => txn([{ op: 'del-port', bridge: 'br0', port: 'nope' }])).toThrow('no port named nope');
  });

  it('makes no operations for commands that cancel out', () => {
    expect(txn([])).toEqual([]);
    expect(
      txn([
        { op: 'add-port', bridge: 'br0', port: 'tmp', cols: {}, ifaces: { tmp: {} } },
        { op: 'del-port', bridge: 'br0', port: 'tmp' },
      ]),
    ).toEqual([]);
  });
});
