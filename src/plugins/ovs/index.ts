/**
 * ovs: Open vSwitch bridges, ports, bonds and interfaces, spoken to over OVSDB (RFC 7047).
 * Reads: one transact of selects for all tables. Apply: one transaction per batch (apply wave),
 * whatever its size. Watch: one OVSDB monitor on Bridge, Port and Interface.
 */
import { attributeFromLog } from './attribute.js';
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import type { ApplyContext, Change, ChangeResult, Edge, NormalizeContext, Obj, Plugin } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { arrayToMap } from '../../core/normalize.js';
import { mapEntries } from '../../core/shorthand.js';
import { isObj } from '../../core/diff.js';
import {
  dbUrl,
  readDb,
  toSection,
  transactApply,
  transactRead,
  waitForVswitchd,
  DB_NAME,
  READ_TIMEOUT_MS,
  BRIDGE_COLS,
  PORT_COLS,
  IFACE_COLS,
  type BridgeState,
  type PortState,
} from './db.js';
import { planBridge, type OvsChangeData } from './plan.js';
import { TxnBuilder, SNAPSHOT_COLUMNS, type Snapshot } from './txn.js';
import { OvsdbClient, decodeRow, type Operation } from '../../ovsdb/client.js';
import type { OvsDoc } from './section.gen.js';

/** The section's type, generated from schema/ovs.schema.json (npm run gen:types); as read, bridges and ports carry vswitchd's errors. */
export type OvsSection = Omit<OvsDoc, 'bridges'> & { bridges?: Record<string, BridgeState> } & Obj;

/** Whether ovs-vswitchd has ever run against a database (it fills datapath_types). */
const vswitchdSeen = new Map<string, boolean>();

/** obj[k] = v, also for a key named `__proto__` (an own property, as Object.fromEntries makes it). */
function setOwn(obj: Obj, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(obj, k, { value: v, writable: true, enumerable: true, configurable: true });
  else obj[k] = v;
}

function normalizePort(p: unknown): unknown {
  if (!isObj(p)) return p;
  // copy on write: most ports (10,000 in a big document) have nothing to normalize
  const peerInOptions = isObj(p.options) && typeof p.options.peer === 'string' && p.peer === undefined;
  if (!peerInOptions && !Array.isArray(p.trunks) && !isObj(p.interfaces)) return p;
  const out: Obj = { ...p };
  if (isObj(out.options) && typeof out.options.peer === 'string' && out.peer === undefined) {
    const { peer, ...rest } = out.options;
    out.peer = peer;
    out.options = rest;
  }
  if (Array.isArray(out.trunks) && out.trunks.every((t) => typeof t === 'number'))
    out.trunks = [...(out.trunks as number[])].sort((a, b) => a - b);
  // bond membership is exact: members the document does not name leave the bond
  if (isObj(out.interfaces)) out.prune = { ...(isObj(out.prune) ? out.prune : {}), interfaces: true };
  return out;
}

const escKey = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * op-dbus: plugins.net.interfaces[] entries of type ovs-bridge are OVS bridges (their `ports`
 * the bridge's ports), entries of type ovs-port are internal ports of the bridge named by
 * `properties.parent_bridge`. Their addressing stays with net (kind ovs).
 */
function adoptOpDbusInterfaces(plugins: Record<string, unknown>, ctx: NormalizeContext): void {
  const net = plugins.net;
  if (!isObj(net) || !Array.isArray(net.interfaces)) return;
  const isOvs = (itf: unknown): itf is Obj =>
    isObj(itf) && (itf.type === 'ovs-bridge' || itf.type === 'ovs-port') && typeof itf.name === 'string';
  if (!net.interfaces.some(isOvs)) return;
  const ovs: Obj = isObj(plugins.ovs) ? plugins.ovs : {};
  plugins.ovs = ovs;
  const bridges: Obj = isObj(ovs.bridges) ? ovs.bridges : {};
  ovs.bridges = bridges;
  // what stays with net becomes net's map form here, so that error positions keep the source index
  const rest: Obj = {};
  const push = (itf: unknown, i: number) => {
    const key = isObj(itf) && typeof itf.name === 'string' ? itf.name : `#${i}`;
    if (key in rest)
      ctx.refuse(`/plugins/net/interfaces/${i}/name`, `interface "${key}" is named twice`, 'name each interface once');
    rest[key] = isObj(itf) ? Object.fromEntries(Object.entries(itf).filter(([k]) => k !== 'name')) : itf;
    ctx.remap(`/plugins/net/interfaces/${escKey(key)}`, `/plugins/net/interfaces/${i}`);
  };
  const keep = (itf: Obj, drop: string[], i: number) => {
    const addressing = Object.fromEntries(Object.entries(itf).filter(([k]) => !drop.includes(k)));
    if (Object.keys(addressing).length > 1) push({ ...addressing, kind: 'ovs-bridge' }, i);
  };
  const items = net.interfaces as unknown[];
  items.forEach((itf, i) => {
    if (!isOvs(itf) || itf.type !== 'ovs-bridge') return;
    const ports: Obj = {};
    if (Array.isArray(itf.ports)) for (const p of itf.ports) if (typeof p === 'string') ports[p] = {};
    const name = itf.name as string;
    const had = bridges[name];
    bridges[name] = isObj(had) ? { ...had, ports: { ...(isObj(had.ports) ? had.ports : {}), ...ports } } : { ports };
    ctx.remap(`/plugins/ovs/bridges/${escKey(name)}`, `/plugins/net/interfaces/${i}`);
  });
  items.forEach((itf, i) => {
    if (!isOvs(itf)) {
      push(itf, i);
      return;
    }
    const at = `/plugins/net/interfaces/${i}`;
    if (itf.type === 'ovs-bridge') {
      keep(itf, ['type', 'ports'], i);
      return;
    }
    // ovs-port: an internal port (an interface of the host) on its parent bridge
    const props = isObj(itf.properties) ? itf.properties : {};
    const parent = props.parent_bridge ?? itf.bridge;
    const portType = props.port_type ?? 'internal';
    for (const k of Object.keys(props)) {
      if (k !== 'parent_bridge' && k !== 'port_type')
        ctx.refuse(
          `${at}/properties/${escKey(k)}`,
          `op-dbus ovs-port property "${k}" is not supported`,
          'an ovs-port has properties.parent_bridge and properties.port_type (internal)',
        );
    }
    if (Array.isArray(itf.ports) && itf.ports.length)
      ctx.refuse(
        `${at}/ports`,
        'an op-dbus ovs-port has no ports of its own',
        'list ports on the bridge (type ovs-bridge, `ports`)',
      );
    if (typeof parent !== 'string') {
      ctx.refuse(
        `${at}/type`,
        `op-dbus ovs-port "${String(itf.name)}" names no parent bridge`,
        'add properties.parent_bridge: <the OVS bridge>',
      );
      return;
    }
    if (portType !== 'internal') {
      ctx.refuse(
        `${at}/properties/port_type`,
        `op-dbus ovs-port port_type ${JSON.stringify(portType)} is not supported`,
        'ovs-port supports port_type internal; for other port types use plugins.ovs.bridges.<bridge>.ports.<port>.type',
      );
      return;
    }
    const b: Obj = isObj(bridges[parent]) ? bridges[parent] : {};
    bridges[parent] = b;
    const ports: Obj = isObj(b.ports) ? b.ports : {};
    b.ports = ports;
    ports[itf.name as string] = { type: 'internal' };
    ctx.remap(`/plugins/ovs/bridges/${escKey(parent)}/ports/${escKey(itf.name as string)}`, at);
    keep(itf, ['type', 'ports', 'properties', 'bridge'], i);
  });
  if (Object.keys(rest).length) net.interfaces = rest;
  else delete plugins.net;
}

/**
 * op-dbus: `openflow.bridges[].socket_ports` ({name, container_id, ofport}) are OVS internal
 * ports that op-dbus's openflow plugin adds to the bridge ("containerless" networking): here
 * they are ports of the bridge in this section, `type: internal`, the container id in the port's
 * external_ids (container_id). OVS assigns the OpenFlow port number: a given ofport is a warning.
 */
function adoptOpDbusSocketPorts(plugins: Record<string, unknown>, ctx: NormalizeContext): void {
  const of = plugins.openflow;
  if (!isObj(of)) return;
  const endpoint = of.controller_endpoint;
  delete of.controller_endpoint;
  const list: [string, string, Obj][] = Array.isArray(of.bridges)
    ? of.bridges.flatMap((b: unknown, i: number) =>
        isObj(b) && typeof b.name === 'string'
          ? [[b.name, `/plugins/openflow/bridges/${i}`, b] as [string, string, Obj]]
          : [],
      )
    : isObj(of.bridges)
      ? Object.entries(of.bridges).flatMap(([n, b]) =>
          isObj(b) ? [[n, `/plugins/openflow/bridges/${escKey(n)}`, b] as [string, string, Obj]] : [],
        )
      : [];
  // op-dbus's controller_endpoint: the controller of every bridge of the section
  if (endpoint !== undefined) {
    const ovs: Obj = isObj(plugins.ovs) ? plugins.ovs : {};
    plugins.ovs = ovs;
    const bridges: Obj = isObj(ovs.bridges) ? ovs.bridges : {};
    ovs.bridges = bridges;
    for (const [bridge] of list) {
      const br: Obj = isObj(bridges[bridge]) ? bridges[bridge] : {};
      if (!isObj(bridges[bridge]))
        ctx.remap(`/plugins/ovs/bridges/${escKey(bridge)}`, '/plugins/openflow/controller_endpoint');
      bridges[bridge] = br;
      if (br.controller !== undefined && br.controller !== endpoint) {
        ctx.refuse(
          '/plugins/openflow/controller_endpoint',
          `controller_endpoint ${JSON.stringify(endpoint)} differs from the controller of ovs bridge "${bridge}"`,
          'give the controller in one place: ovs.bridges.<bridge>.controller or openflow.controller_endpoint',
        );
        continue;
      }
      br.controller = endpoint;
      ctx.remap(`/plugins/ovs/bridges/${escKey(bridge)}/controller`, '/plugins/openflow/controller_endpoint');
    }
  }
  for (const [bridge, at, b] of list) {
    if (!('socket_ports' in b)) continue;
    const sp = b.socket_ports;
    delete b.socket_ports;
    if (sp === null || sp === undefined) continue;
    if (!Array.isArray(sp)) {
      ctx.refuse(
        `${at}/socket_ports`,
        'op-dbus socket_ports is a list',
        'write socket_ports: [{ name, container_id }]',
      );
      continue;
    }
    const ovs: Obj = isObj(plugins.ovs) ? plugins.ovs : {};
    plugins.ovs = ovs;
    const bridges: Obj = isObj(ovs.bridges) ? ovs.bridges : {};
    ovs.bridges = bridges;
    const created = !isObj(bridges[bridge]);
    const br: Obj = isObj(bridges[bridge]) ? bridges[bridge] : {};
    bridges[bridge] = br;
    const ports: Obj = isObj(br.ports) ? br.ports : {};
    br.ports = ports;
    sp.forEach((p: unknown, i: number) => {
      const pat = `${at}/socket_ports/${i}`;
      if (!isObj(p) || typeof p.name !== 'string' || !p.name) {
        ctx.refuse(pat, 'an op-dbus socket port needs a name', 'write { name: internal_<id>, container_id: "<id>" }');
        return;
      }
      for (const k of Object.keys(p))
        if (!['name', 'container_id', 'ofport'].includes(k))
          ctx.refuse(
            `${pat}/${escKey(k)}`,
            `unknown key "${k}" of an op-dbus socket port`,
            'a socket port has name, container_id and ofport',
          );
      if (p.ofport !== null && p.ofport !== undefined)
        ctx.warn(
          `${pat}/ofport`,
          'ofport is not set by opd: Open vSwitch assigns the OpenFlow port number',
          'remove ofport (or write null)',
        );
      if (p.name in ports) {
        ctx.refuse(pat, `port "${p.name}" of bridge "${bridge}" is declared twice`, 'declare each port once');
        return;
      }
      const port: Obj = { type: 'internal' };
      if (p.container_id !== undefined && p.container_id !== null)
        port.external_ids = { container_id: String(p.container_id) };
      ports[p.name] = port;
      ctx.remap(`/plugins/ovs/bridges/${escKey(bridge)}/ports/${escKey(p.name)}`, pat);
    });
    if (created) ctx.remap(`/plugins/ovs/bridges/${escKey(bridge)}`, `${at}/socket_ports`);
  }
}

const plugin: Plugin<OvsSection, OvsChangeData> = {
  ...sectionSpec(manifest),

  adopt(plugins, ctx) {
    adoptOpDbusInterfaces(plugins, ctx);
    adoptOpDbusSocketPorts(plugins, ctx);
    defaultTakeOver(plugins);
  },

  normalize(section, ctx) {
    if (!isObj(section)) return section;
    const out: Obj = { ...section };
    out.bridges = arrayToMap(out.bridges, 'name', '/plugins/ovs/bridges', ctx);
    if (isObj(out.bridges))
      out.bridges = mapEntries(out.bridges, (spec, b) => {
        const s: Obj = { ...spec };
        // one controller or a list: the sorted list the database holds
        if (typeof s.controller === 'string') {
          s.controller = [s.controller];
          ctx.remap(`/plugins/ovs/bridges/${escKey(b)}/controller/0`, `/plugins/ovs/bridges/${escKey(b)}/controller`);
        } else if (Array.isArray(s.controller) && s.controller.every((t) => typeof t === 'string'))
          s.controller = [...s.controller].sort();
        if (s.ports !== undefined) s.ports = arrayToMap(s.ports, 'name', `/plugins/ovs/bridges/${b}/ports`, ctx);
        if (isObj(s.ports)) {
          const ports = s.ports;
          const keys = Object.keys(ports);
          let copy: Obj | undefined;
          for (let i = 0; i < keys.length; i++) {
            const v = ports[keys[i]];
            const w = normalizePort(v);
            if (w !== v && !copy) {
              copy = {};
              for (let j = 0; j < i; j++) setOwn(copy, keys[j], ports[keys[j]]);
            }
            if (copy) setOwn(copy, keys[i], w);
          }
          if (copy) s.ports = copy;
        }
        return s;
      });
    return out;
  },

  async read(ctx, desired) {
    const raw = await readDb(ctx.settings);
    vswitchdSeen.set(dbUrl(ctx.settings), raw.vswitchd);
    const all = toSection(raw).bridges;
    const named = desired.bridges ?? {};
    const bridges: Record<string, BridgeState> = {};
    for (const [n, b] of Object.entries(all)) if (n in named || desired.prune?.bridges) bridges[n] = b;
    return { bridges };
  },

  faults(current, desired) {
    const out: Record<string, string> = {};
    for (const [b, spec] of Object.entries(desired.bridges ?? {})) {
      if (spec.state === 'absent') continue;
      const be = current.bridges?.[b]?.error;
      if (typeof be === 'string') out[`ovs/bridges/${b}`] = be;
      const curPorts = current.bridges?.[b]?.ports ?? {};
      for (const [p, ps] of Object.entries(spec.ports ?? {})) {
        const e = curPorts[p]?.error;
        if (typeof e === 'string' && ps.state !== 'absent') out[`ovs/bridges/${b}/ports/${p}`] = e;
      }
    }
    return out;
  },

  plan: planBridge,
  // a port's changes follow its own bridge only; a patch peer's bridge is an edge (edges())
  ordersAfterOthers: false,

  // one OVSDB transaction for the whole batch (a port with its bridge), whatever its size
  transaction: true,
  apply: applyTxn,

  edges(desired) {
    // a patch port needs its peer's bridge
    const edges: Edge[] = [];
    const owner = new Map<string, string>();
    for (const [b, spec] of Object.entries(desired.bridges ?? {}))
      for (const p of Object.keys(spec.ports ?? {})) owner.set(p, b);
    for (const [b, spec] of Object.entries(desired.bridges ?? {}))
      for (const [p, ps] of Object.entries(spec.ports ?? {})) {
        const pb = ps.peer !== undefined ? owner.get(ps.peer) : undefined;
        if (pb && pb !== b)
          edges.push({ from: `ovs/bridges/${b}/ports/${p}`, to: `ovs/bridges/${pb}`, kind: 'patch-peer', exact: true });
      }
    return edges;
  },

  async show(ctx) {
    const all = toSection(await readDb(ctx.settings)).bridges;
    const bridges: Record<string, BridgeState> = {};
    for (const [n, b] of Object.entries(all)) {
      if (!IFNAME.test(n)) {
        ctx.log.warn({ bridge: n }, 'bridge name cannot be written in an opd document; left out of show');
        continue;
      }
      const ports: Record<string, PortState> = {};
      for (const [p, ps] of Object.entries(b.ports ?? {})) {
        const { error: _e, ...rest } = ps;
        ports[p] = pruneEmpty(rest);
      }
      const { error: _be, ...bridge } = b;
      bridges[n] = pruneEmpty({ ...bridge, ports });
    }
    return { bridges };
  },

  // the database file's transaction comments name ovs-vsctl's command line and its parent
  async attribute(ctx, _drifted, since) {
    return attributeFromLog(dbUrl(ctx.settings), since);
  },

  async watch(ctx, onDrift) {
    // one monitor on a connection of its own, only the columns opd reads (so that
    // ovs-vswitchd's statistics updates do not wake the daemon), no initial dump (not drift)
    const c = await OvsdbClient.connect(dbUrl(ctx.settings), { timeoutMs: READ_TIMEOUT_MS });
    let stopping = false;
    c.onClose((err) => {
      if (!stopping) ctx.log.warn({ err: err.message }, 'OVS event stream ended');
    });
    const cols = (list: string[]) => list.filter((x) => x !== '_uuid');
    const select = { initial: false, insert: true, delete: true, modify: true };
    try {
      await c.monitor(
        DB_NAME,
        {
          Bridge: { columns: cols(BRIDGE_COLS), select },
          Port: { columns: cols(PORT_COLS), select },
          Interface: { columns: cols(IFACE_COLS), select },
        },
        () => onDrift(),
      );
    } catch (err) {
      stopping = true;
      c.close();
      throw err;
    }
    return {
      dispose: () => {
        stopping = true;
        c.close();
      },
    };
  },

  async doctor(ctx) {
    const db = dbUrl(ctx.settings);
    try {
      const raw = await readDb(ctx.settings);
      return [
        { name: 'ovs: database', ok: true, detail: `${db}: ${raw.bridges.length} bridges` },
        {
          name: 'ovs: vswitchd',
          ok: raw.vswitchd,
          detail: raw.vswitchd
            ? 'ovs-vswitchd has registered with the database'
            : 'ovs-vswitchd has never run against this database (changes are database-only)',
          hint: raw.vswitchd
            ? undefined
            : 'start ovs-vswitchd; bridges need datapath_type: netdev without the kernel module',
        },
      ];
    } catch (err) {
      const e = toOpdError(err);
      return [{ name: 'ovs: database', ok: false, detail: e.message, hint: e.hint }];
    }
  },
};

/** Names of a collection given as a map or as an op-dbus array of names / named objects. */
function namesOf(coll: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (isObj(coll)) for (const [k, v] of Object.entries(coll)) out.set(k, v);
  if (Array.isArray(coll))
    for (const x of coll) {
      if (typeof x === 'string') out.set(x, {});
      else if (isObj(x) && typeof x.name === 'string') out.set(x.name, x);
    }
  return out;
}

/**
 * A bridge that takes over a physical port takes over its addresses too: when the net section
 * addresses the bridge (kind ovs), its `take_over` defaults to the bridge's system ports (and
 * bond members), so that the uplink's addresses and gateway routes move to the bridge.
 */
function defaultTakeOver(plugins: Record<string, unknown>): void {
  const ovs = plugins.ovs;
  const net = plugins.net;
  if (!isObj(ovs) || !isObj(net)) return;
  for (const [br, spec] of namesOf(ovs.bridges)) {
    if (!isObj(spec) || spec.state === 'absent') continue;
    const uplinks: string[] = [];
    for (const [p, ps] of namesOf(spec.ports)) {
      const port = isObj(ps) ? ps : {};
      if (port.state === 'absent' || (port.type !== undefined && port.type !== 'system')) continue;
      if (isObj(port.interfaces) || Array.isArray(port.interfaces)) uplinks.push(...namesOf(port.interfaces).keys());
      else uplinks.push(p);
    }
    if (!uplinks.length) continue;
    const itf = namesOf(net.interfaces).get(br);
    if (isObj(itf) && itf.take_over === undefined && itf.state !== 'absent')
      itf.take_over = [...new Set(uplinks)].sort();
  }
}

/** Names and uuids of every bridge, port and interface (one transact of selects). */
async function snapshot(ctx: ApplyContext): Promise<Snapshot> {
  const ops: Operation[] = Object.entries(SNAPSHOT_COLUMNS).map(([table, columns]) => ({
    op: 'select',
    table,
    where: [],
    columns: [...columns],
  }));
  const [root, bridges, ports, ifaces] = (await transactRead(ctx.settings, ops)).map((r) =>
    (r.rows ?? []).map(decodeRow),
  );
  if (!root.length)
    throw new OpdError('backend-failed', `the OVS database at ${dbUrl(ctx.settings)} has no Open_vSwitch row`, {
      hint: 'initialize it: ovs-vsctl --no-wait init',
    });
  const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : []);
  return {
    root: root[0]._uuid as string,
    bridges: bridges.map((b) => ({ uuid: b._uuid as string, name: b.name as string, ports: list(b.ports) })),
    ports: ports.map((p) => ({ uuid: p._uuid as string, name: p.name as string, interfaces: list(p.interfaces) })),
    ifaces: ifaces.map((i) => ({ uuid: i._uuid as string, name: i.name as string })),
  };
}

/**
 * Commit changes as one transaction. With ovs-vswitchd running, the transaction also
 * increments next_cfg and opd waits until vswitchd reports it in cur_cfg (ovs-vsctl's
 * handshake); without it the change is database-only (ovs-vsctl --no-wait).
 */
async function commit(ctx: ApplyContext, changes: Change<OvsChangeData>[], wait: boolean): Promise<void> {
  const b = new TxnBuilder(await snapshot(ctx));
  for (const c of changes)
    for (const cmd of c.data!.cmds) {
      try {
        b.add(cmd);
      } catch (err) {
        throw changes.length === 1
          ? new OpdError(toOpdError(err).kind, toOpdError(err).message, { address: c.address })
          : err;
      }
    }
  const ops = b.operations();
  if (!ops.length) return;
  if (wait)
    ops.push(
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
    );
  ops.push({ op: 'comment', comment: `opd: ${changes.length} change${changes.length === 1 ? '' : 's'}` });
  const results = await transactApply(ctx, ops);
  if (wait) {
    const next = results[ops.length - 2]?.rows?.[0]?.next_cfg;
    if (typeof next === 'number') await waitForVswitchd(ctx, next);
  }
}

/** One batch of changes as one transaction (see apply). */
async function applyTxn(ctx: ApplyContext, changes: Change<OvsChangeData>[]): Promise<ChangeResult[]> {
  const wait = vswitchdSeen.get(dbUrl(ctx.settings)) ?? false;
  // atomic: when it fails, nothing happened and the core hands the changes over one at a time
  await commit(ctx, changes, wait);
  const results: ChangeResult[] = changes.map((c) => ({ address: c.address, status: 'ok' as const }));
  if (wait) {
    // vswitchd records what it could not do in Interface.error; a transaction that
    // committed is not a success when the interface did not come up
    const watched = new Map<string, Change>();
    for (const c of changes) for (const i of c.data!.ifaces) watched.set(i, c);
    if (watched.size) {
      const [r] = await transactRead(ctx.settings, [
        { op: 'select', table: 'Interface', where: [], columns: ['name', 'error'] },
      ]);
      const bad = new Map<string, string>();
      for (const row of (r.rows ?? []).map(decodeRow)) {
        const e = Array.isArray(row.error) ? row.error[0] : row.error;
        if (typeof e === 'string' && e && watched.has(row.name as string)) bad.set(row.name as string, e);
      }
      for (const [i, r] of results.entries()) {
        if (r.status !== 'ok') continue;
        const c = changes[i];
        const errs = c.data!.ifaces.filter((i) => bad.has(i)).map((i) => `${i}: ${bad.get(i)}`);
        if (errs.length) {
          r.status = 'failed';
          r.error = new OpdError('backend-failed', `ovs-vswitchd rejected ${errs.join('; ')}`, {
            address: r.address,
            hint: 'check that the device exists and the bridge datapath_type suits this host (netdev without the kernel module)',
          });
        }
      }
    }
  }
  return results;
}

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

/** Drop empty maps from show output (deeply) so it reads like a hand-written document. */
function pruneEmpty<T extends object>(o: T): T {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    if (isObj(v) && !Object.keys(v).length && k !== 'ports') continue;
    out[k] = isObj(v) && k !== 'external_ids' && k !== 'other_config' && k !== 'options' ? pruneEmpty(v) : v;
  }
  return out as T;
}

export default plugin;
