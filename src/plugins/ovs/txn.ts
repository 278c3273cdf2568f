/**
 * A batch of OVS commands (plan.ts, in ovs-vsctl's verbs) as one OVSDB transaction (RFC 7047),
 * the way ovs-vsctl builds its own: new rows are inserted with named uuids and referenced from
 * their parent (Open_vSwitch.bridges, Bridge.ports, Port.interfaces); removed rows are deleted
 * and unreferenced; map keys are replaced with a delete + insert mutation. Pure: it works on a
 * snapshot of names and uuids read just before, and refuses what ovs-vsctl refuses (a bridge or
 * port that already exists, one that does not) with ovs-vsctl's words.
 */
import { OpdError } from '../../core/errors.js';
import {
  map,
  namedUuid,
  set,
  uuid,
  type Atom,
  type Condition,
  type Mutation,
  type Operation,
  type Row,
  type Value,
} from '../../ovsdb/client.js';
import type { Cols, OvsCmd, OvsTable } from './plan.js';

/** Names and uuids of what is in the database now (read with one transact of selects). */
export interface Snapshot {
  /** the Open_vSwitch row */
  root: string;
  bridges: { uuid: string; name: string; ports: string[] }[];
  ports: { uuid: string; name: string; interfaces: string[] }[];
  ifaces: { uuid: string; name: string }[];
}

/** The columns a snapshot needs, per table. */
export const SNAPSHOT_COLUMNS = {
  Open_vSwitch: ['_uuid'],
  Bridge: ['_uuid', 'name', 'ports'],
  Port: ['_uuid', 'name', 'interfaces'],
  Interface: ['_uuid', 'name'],
} as const;

const MAP_COLUMNS = new Set(['external_ids', 'other_config', 'options']);

/** A JS column value as OVSDB JSON: objects are maps, arrays sets, the rest atoms. */
export function encode(col: string, v: unknown): Value {
  if (MAP_COLUMNS.has(col)) return map((v ?? {}) as Record<string, unknown>);
  if (Array.isArray(v)) return set(v as Atom[]);
  return v as Atom;
}

interface Entry {
  table: OvsTable;
  name: string;
  /** existing row */
  uuid?: string;
  /** row inserted by this transaction */
  named?: string;
  cols?: Cols;
  /** children: Bridge → ports, Port → interfaces (names) */
  children: Set<string>;
  parent?: string;
}

interface Pending {
  update: Row;
  mutations: Map<string, { del: Set<string>; ins: Map<string, string> }>;
  refs: Map<string, { del: Atom[]; ins: Atom[] }>;
}

const REF_COL: Record<string, string> = { Open_vSwitch: 'bridges', Bridge: 'ports', Port: 'interfaces' };

export class TxnBuilder {
  private readonly rows: Record<OvsTable, Map<string, Entry>> = {
    Bridge: new Map(),
    Port: new Map(),
    Interface: new Map(),
  };
  private readonly inserts: Entry[] = [];
  private readonly deletes: { table: OvsTable; uuid: string }[] = [];
  private readonly pending = new Map<string, Pending>();
  /** Controller rows this transaction inserts: named uuid → target */
  private readonly controllers: [string, string][] = [];
  private seq = 0;

  constructor(private readonly snap: Snapshot) {
    const portName = new Map<string, string>();
    const ifName = new Map<string, string>();
    for (const i of snap.ifaces) {
      ifName.set(i.uuid, i.name);
      this.rows.Interface.set(i.name, { table: 'Interface', name: i.name, uuid: i.uuid, children: new Set() });
    }
    for (const p of snap.ports) {
      portName.set(p.uuid, p.name);
      const kids = new Set(p.interfaces.map((u) => ifName.get(u)).filter((x): x is string => !!x));
      this.rows.Port.set(p.name, { table: 'Port', name: p.name, uuid: p.uuid, children: kids });
      for (const k of kids) this.rows.Interface.get(k)!.parent = p.name;
    }
    for (const b of snap.bridges) {
      const kids = new Set(b.ports.map((u) => portName.get(u)).filter((x): x is string => !!x));
      this.rows.Bridge.set(b.name, { table: 'Bridge', name: b.name, uuid: b.uuid, children: kids });
      for (const k of kids) {
        const p = this.rows.Port.get(k);
        if (p) p.parent = b.name;
      }
    }
  }

  /** Apply one command to the model; throws an OpdError (ovs-vsctl's wording) for what it would refuse. */
  add(cmd: OvsCmd): void {
    switch (cmd.op) {
      case 'add-br': {
        this.refuseExisting('bridge', cmd.bridge);
        const iface = this.insert('Interface', cmd.bridge, { type: 'internal' });
        const port = this.insert('Port', cmd.bridge, {});
        this.link(port, iface);
        const br = this.insert('Bridge', cmd.bridge, { ...cmd.cols });
        this.link(br, port);
        this.ref('Open_vSwitch', this.snap.root, 'ins', namedUuid(br.named!));
        return;
      }
      case 'del-br': {
        const br = this.need('Bridge', cmd.bridge, `no bridge named ${cmd.bridge}`);
        for (const p of [...br.children]) this.dropPort(br, this.rows.Port.get(p)!);
        this.drop(br);
        if (br.uuid) this.ref('Open_vSwitch', this.snap.root, 'del', uuid(br.uuid));
        return;
      }
      case 'add-port': {
        const br = this.need('Bridge', cmd.bridge, `no bridge named ${cmd.bridge}`);
        this.refuseExisting('port', cmd.port);
        const names = Object.keys(cmd.ifaces);
        for (const n of names) this.refuseIface(n, cmd.port);
        const port = this.insert('Port', cmd.port, { ...cmd.cols });
        for (const n of names) this.link(port, this.insert('Interface', n, { ...cmd.ifaces[n] }));
        this.link(br, port);
        return;
      }
      case 'del-port': {
        const br = this.need('Bridge', cmd.bridge, `no bridge named ${cmd.bridge}`);
        const port = this.need('Port', cmd.port, `no port named ${cmd.port}`);
        if (port.parent !== br.name)
          throw refused(
            `bridge ${cmd.bridge} does not have a port ${cmd.port}${port.parent ? ` (although its parent bridge ${port.parent} does)` : ''}`,
          );
        this.dropPort(br, port);
        return;
      }
      case 'add-bond-iface': {
        const port = this.need('Port', cmd.port, `no port named ${cmd.port}`);
        this.refuseIface(cmd.iface, cmd.port);
        this.link(port, this.insert('Interface', cmd.iface, { ...cmd.cols }));
        return;
      }
      case 'del-bond-iface': {
        const port = this.need('Port', cmd.port, `no port named ${cmd.port}`);
        const iface = this.need('Interface', cmd.iface, `no interface named ${cmd.iface}`);
        if (iface.parent !== port.name) throw refused(`port ${cmd.port} does not have an interface ${cmd.iface}`);
        this.unlink(port, iface);
        this.drop(iface);
        return;
      }
      case 'set-controller': {
        // new Controller rows referenced from the bridge; the rows it referenced before are no
        // longer referenced and the database drops them (Controller is not a root table)
        const br = this.need('Bridge', cmd.bridge, `no bridge named ${cmd.bridge}`);
        const refs = cmd.targets.map((t) => {
          const n = `ctl${++this.seq}`;
          this.controllers.push([n, t]);
          return namedUuid(n);
        });
        if (br.named) br.cols!.controller = refs;
        else this.pendingOf('Bridge', br.uuid!).update.controller = set(refs);
        return;
      }
      case 'set':
      case 'remove': {
        const row = this.need(cmd.table, cmd.name, `no row "${cmd.name}" in table ${cmd.table}`);
        if (row.named) {
          // a row of this transaction: change the inserted row itself
          const cols = row.cols!;
          if (cmd.op === 'set' && cmd.key === undefined) cols[cmd.col] = cmd.value;
          else {
            const m = { ...((cols[cmd.col] as Cols | undefined) ?? {}) };
            if (cmd.op === 'set') m[cmd.key!] = cmd.value;
            else delete m[cmd.key];
            cols[cmd.col] = m;
          }
          return;
        }
        const p = this.pendingOf(row.table, row.uuid!);
        if (cmd.op === 'set' && cmd.key === undefined) {
          p.update[cmd.col] = encode(cmd.col, cmd.value);
          return;
        }
        const key = cmd.key!;
        let m = p.mutations.get(cmd.col);
        if (!m) p.mutations.set(cmd.col, (m = { del: new Set(), ins: new Map() }));
        m.del.add(key);
        if (cmd.op === 'set') m.ins.set(key, String(cmd.value));
        else m.ins.delete(key);
        return;
      }
    }
  }

  /** The transaction's operations (empty when the commands change nothing). */
  operations(): Operation[] {
    const ops: Operation[] = [];
    for (const e of this.inserts) {
      const row: Row = {};
      for (const [k, v] of Object.entries(e.cols ?? {})) if (v !== undefined) row[k] = encode(k, v);
      row.name = e.name;
      const refCol = REF_COL[e.table];
      if (refCol)
        row[refCol] = set([...e.children].map((c) => this.refOf(e.table === 'Bridge' ? 'Port' : 'Interface', c)));
      ops.push({ op: 'insert', table: e.table, row, 'uuid-name': e.named! });
    }
    for (const [n, target] of this.controllers)
      ops.push({ op: 'insert', table: 'Controller', row: { target }, 'uuid-name': n });
    for (const [key, p] of this.pending) {
      const [table, id] = key.split(' ');
      const where: Condition[] = [['_uuid', '==', uuid(id)]];
      if (Object.keys(p.update).length) ops.push({ op: 'update', table, where, row: p.update });
      const mutations: Mutation[] = [];
      for (const [col, m] of p.mutations) {
        if (m.del.size) mutations.push([col, 'delete', set([...m.del].sort())]);
        if (m.ins.size) mutations.push([col, 'insert', map(Object.fromEntries(m.ins))]);
      }
      for (const [col, r] of p.refs) {
        if (r.del.length) mutations.push([col, 'delete', set(r.del)]);
        if (r.ins.length) mutations.push([col, 'insert', set(r.ins)]);
      }
      if (mutations.length) ops.push({ op: 'mutate', table, where, mutations });
    }
    for (const d of this.deletes) ops.push({ op: 'delete', table: d.table, where: [['_uuid', '==', uuid(d.uuid)]] });
    return ops;
  }

  private refOf(table: OvsTable, name: string): Atom {
    const e = this.rows[table].get(name)!;
    return e.named ? namedUuid(e.named) : uuid(e.uuid!);
  }

  private need(table: OvsTable, name: string, msg: string): Entry {
    const e = this.rows[table].get(name);
    if (!e) throw refused(msg);
    return e;
  }

  private refuseExisting(kind: 'bridge' | 'port', name: string): void {
    const br = this.rows.Bridge.get(name);
    if (br && kind === 'bridge')
      throw refused(`cannot create a bridge named ${name} because a bridge named ${name} already exists`);
    const p = this.rows.Port.get(name);
    if (p)
      throw refused(
        `cannot create a ${kind} named ${name} because a port named ${name} already exists${p.parent ? ` on bridge ${p.parent}` : ''}`,
      );
    if (kind === 'bridge') this.refuseIface(name, name);
  }

  private refuseIface(name: string, port: string): void {
    const i = this.rows.Interface.get(name);
    if (i)
      throw refused(
        `cannot create an interface named ${name} for port ${port} because ${i.parent ? `port ${i.parent}` : 'a port'} already has an interface named ${name}`,
      );
  }

  private insert(table: OvsTable, name: string, cols: Cols): Entry {
    const e: Entry = { table, name, named: `row${++this.seq}`, cols, children: new Set() };
    this.rows[table].set(name, e);
    this.inserts.push(e);
    return e;
  }

  private link(parent: Entry, child: Entry): void {
    parent.children.add(child.name);
    child.parent = parent.name;
    if (parent.uuid) this.ref(parent.table, parent.uuid, 'ins', this.refOf(child.table, child.name));
  }

  private unlink(parent: Entry, child: Entry): void {
    if (parent.uuid) this.ref(parent.table, parent.uuid, 'del', this.refOf(child.table, child.name));
    parent.children.delete(child.name);
    child.parent = undefined;
  }

  private dropPort(br: Entry, port: Entry): void {
    for (const i of [...port.children]) {
      const iface = this.rows.Interface.get(i);
      if (iface) this.drop(iface);
    }
    this.unlink(br, port);
    this.drop(port);
  }

  /** Remove a row: an inserted one is not inserted, an existing one is deleted. */
  private drop(e: Entry): void {
    this.rows[e.table].delete(e.name);
    if (e.named) {
      const i = this.inserts.indexOf(e);
      if (i >= 0) this.inserts.splice(i, 1);
    } else {
      this.deletes.push({ table: e.table, uuid: e.uuid! });
      this.pending.delete(`${e.table} ${e.uuid}`);
    }
  }

  private ref(table: string, id: string, how: 'ins' | 'del', v: Atom): void {
    const p = this.pendingOf(table, id);
    const col = REF_COL[table];
    let r = p.refs.get(col);
    if (!r) p.refs.set(col, (r = { del: [], ins: [] }));
    if (how === 'ins') r.ins.push(v);
    else {
      // dropping a row inserted by this transaction just forgets the insert
      const i = r.ins.findIndex((x) => Array.isArray(x) && Array.isArray(v) && x[0] === v[0] && x[1] === v[1]);
      if (i >= 0) r.ins.splice(i, 1);
      else r.del.push(v);
    }
  }

  private pendingOf(table: string, id: string): Pending {
    const key = `${table} ${id}`;
    let p = this.pending.get(key);
    if (!p) this.pending.set(key, (p = { update: {}, mutations: new Map(), refs: new Map() }));
    return p;
  }
}

function refused(message: string): OpdError {
  return new OpdError('backend-failed', message);
}
