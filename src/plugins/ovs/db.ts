/**
 * The Open vSwitch database, spoken to directly (OVSDB JSON-RPC, RFC 7047, src/ovsdb/client.ts):
 * a read is one transact of selects over every table opd needs; an apply wave is one transaction.
 * One connection per database URL per process, opened on first use and reopened after it is lost.
 */
import { OvsdbClient, decodeRow, type Operation, type OpResult } from '../../ovsdb/client.js';
import { OpdError, abortedError } from '../../core/errors.js';
import { TUNABLES as CORE_TUNABLES } from '../../core/tunables.js';
import { TUNABLES } from './manifest.js';
import { assertApplyContext, type ApplyContext, type Settings } from '../../core/plugin.js';
import type { Bridge, Iface, Port, Smap } from './section.gen.js';
import { settingOf } from '../../core/manifest.js';
import { OVS_DB } from '../../host/settings.js';

/** A port as read (the generated Port of schema/ovs.schema.json) with the error ovs-vswitchd reports for it. */
export type PortState = Port & { error?: string };
/** A bridge as read, with its ports and the error of its local interface. */
export type BridgeState = Omit<Bridge, 'ports'> & { ports?: Record<string, PortState>; error?: string };

export const DB_NAME = 'Open_vSwitch';
/** How long a read may take; how long vswitchd may take to confirm an apply (ovs-vsctl's --timeout). */
export const READ_TIMEOUT_MS = TUNABLES.ovsdbReadMs;
export const APPLY_TIMEOUT_MS = TUNABLES.ovsdbApplyMs;

export function dbUrl(settings: Settings): string {
  return settingOf(settings, OVS_DB)!;
}

const clients = new Map<string, Promise<OvsdbClient>>();

/** The connection to the configured database (opened on first use, reopened once lost). */
export async function client(settings: Settings): Promise<OvsdbClient> {
  const url = dbUrl(settings);
  const hit = clients.get(url);
  if (hit) {
    const c = await hit.catch(() => undefined);
    if (c && !c.closed) return c;
  }
  const p = OvsdbClient.connect(url, { timeoutMs: CORE_TUNABLES.ovsdbConnectMs });
  clients.set(url, p);
  p.catch(() => clients.delete(url));
  return p;
}

const READ_ONLY = new Set(['select', 'wait', 'comment']);

/** A transaction of selects (and waits): the read door, no ApplyContext needed. */
export async function transactRead(
  settings: Settings,
  ops: Operation[],
  timeoutMs = READ_TIMEOUT_MS,
): Promise<OpResult[]> {
  for (const o of ops)
    if (!READ_ONLY.has(o.op)) throw new Error(`mutating OVSDB operation ${o.op} on the read path (dry-run violation)`);
  return (await client(settings)).transact(DB_NAME, ops, { timeoutMs });
}

/** A transaction that may change the database: the mutate door, only with an ApplyContext; cancelled when ctx.signal fires. */
export async function transactApply(
  ctx: ApplyContext,
  ops: Operation[],
  timeoutMs = APPLY_TIMEOUT_MS,
): Promise<OpResult[]> {
  assertApplyContext(ctx);
  return (await client(ctx.settings)).transact(DB_NAME, ops, { timeoutMs, signal: ctx.signal });
}

/**
 * Wait until ovs-vswitchd has applied configuration `cfg` (Open_vSwitch.cur_cfg ≥ cfg), as
 * ovs-vsctl does after incrementing next_cfg: a monitor on cur_cfg, no polling.
 */
export async function waitForVswitchd(ctx: ApplyContext, cfg: number, timeoutMs = APPLY_TIMEOUT_MS): Promise<void> {
  const settings = ctx.settings;
  const c = await client(settings);
  let done: () => void = () => undefined;
  let fail: (e: Error) => void = () => undefined;
  const reached = new Promise<void>((res, rej) => ((done = res), (fail = rej)));
  reached.catch(() => undefined); // a failure before the monitor is up is thrown by the await below, not unhandled
  const check = (rows: Record<string, { new?: Record<string, unknown> }> | undefined) => {
    for (const r of Object.values(rows ?? {})) if (typeof r.new?.cur_cfg === 'number' && r.new.cur_cfg >= cfg) done();
  };
  const timer = setTimeout(
    () =>
      fail(
        new OpdError(
          'backend-failed',
          `ovs-vswitchd did not confirm the change within ${Math.round(timeoutMs / 1000)} s (database ${dbUrl(settings)})`,
          {
            hint: 'check that ovs-vswitchd is running and look at its log',
          },
        ),
      ),
    timeoutMs,
  );
  const off = c.onClose(fail);
  const stopped = () => fail(abortedError(ctx.signal, `waiting for ovs-vswitchd (database ${dbUrl(settings)})`));
  ctx.signal.addEventListener('abort', stopped, { once: true });
  try {
    const m = await c.monitor(DB_NAME, { Open_vSwitch: { columns: ['cur_cfg'] } }, (u) => check(u.Open_vSwitch), {
      timeoutMs,
      signal: ctx.signal,
    });
    try {
      check(m.initial.Open_vSwitch);
      await reached;
    } finally {
      await m.cancel();
    }
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', stopped);
    off();
  }
}

/** A set column holding zero or one value decodes to [] or the value. */
function optional(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? v[0] : undefined;
  return v;
}

function asList<T = string>(v: unknown): T[] {
  return Array.isArray(v) ? (v as T[]) : v === undefined || v === null ? [] : [v as T];
}

export interface Row {
  [k: string]: unknown;
}

export interface RawDb {
  vswitchd: boolean;
  bridges: Row[];
  ports: Map<string, Row>;
  ifaces: Map<string, Row>;
  /** Controller rows by uuid → their target */
  controllers: Map<string, string>;
}

export const BRIDGE_COLS = [
  '_uuid',
  'name',
  'ports',
  'datapath_type',
  'fail_mode',
  'controller',
  'stp_enable',
  'external_ids',
  'other_config',
];
export const PORT_COLS = [
  '_uuid',
  'name',
  'interfaces',
  'tag',
  'trunks',
  'vlan_mode',
  'bond_mode',
  'lacp',
  'external_ids',
  'other_config',
];
export const IFACE_COLS = ['_uuid', 'name', 'type', 'options', 'mtu_request', 'error', 'external_ids'];

/** Every table opd reads, in one transact of selects. */
export async function readDb(settings: Settings): Promise<RawDb> {
  const sel = (table: string, columns: string[]): Operation => ({ op: 'select', table, where: [], columns });
  const [ovs, bridges, ports, ifaces, controllers] = (
    await transactRead(settings, [
      sel('Open_vSwitch', ['datapath_types']),
      sel('Bridge', BRIDGE_COLS),
      sel('Port', PORT_COLS),
      sel('Interface', IFACE_COLS),
      sel('Controller', ['_uuid', 'target']),
    ])
  ).map((r) => (r.rows ?? []).map(decodeRow));
  const dpTypes = asList(ovs[0]?.datapath_types);
  return {
    vswitchd: dpTypes.length > 0,
    bridges,
    ports: new Map(ports.map((p) => [p._uuid as string, p])),
    ifaces: new Map(ifaces.map((i) => [i._uuid as string, i])),
    controllers: new Map(controllers.map((c) => [c._uuid as string, c.target as string])),
  };
}

/** Column values as decoded from the database (the columns of BRIDGE_COLS, PORT_COLS and IFACE_COLS). */
const str = (v: unknown) => v as string;
const smap = (v: unknown): Smap => ({ ...((v as Smap | undefined) ?? {}) });

function ifaceSpec(i: Row): Iface {
  const options = smap(i.options);
  const out: Iface = { type: (str(i.type) || 'system') as Iface['type'] };
  if (typeof options.peer === 'string') {
    out.peer = options.peer;
    delete options.peer;
  }
  out.options = options;
  const mtu = optional(i.mtu_request);
  if (mtu !== undefined) out.mtu_request = mtu as number;
  out.external_ids = smap(i.external_ids);
  return out;
}

/** Convert database rows to the section shape: bridges → ports (→ interfaces for bonds). */
export function toSection(raw: RawDb): { bridges: Record<string, BridgeState> } {
  const bridges: Record<string, BridgeState> = {};
  for (const b of raw.bridges) {
    const name = str(b.name);
    const ports: Record<string, PortState> = {};
    let localError: string | undefined;
    for (const pu of asList(b.ports)) {
      const p = raw.ports.get(pu);
      if (!p) continue;
      if (p.name === name) {
        // the bridge's own local port is implicit; its interface error is the bridge's
        for (const u of asList(p.interfaces)) {
          const e = optional(raw.ifaces.get(u)?.error);
          if (typeof e === 'string' && e) localError = e;
        }
        continue;
      }
      const ifs = asList(p.interfaces)
        .map((u) => raw.ifaces.get(u))
        .filter((x): x is Row => !!x);
      const spec: PortState = {};
      const errors: string[] = [];
      if (ifs.length === 1 && ifs[0].name === p.name) {
        const { external_ids: _ignored, ...flat } = ifaceSpec(ifs[0]);
        Object.assign(spec, flat);
      } else spec.interfaces = Object.fromEntries(ifs.map((i) => [str(i.name), ifaceSpec(i)]).sort());
      for (const i of ifs) {
        const e = optional(i.error);
        if (typeof e === 'string' && e) errors.push(ifs.length > 1 ? `${i.name}: ${e}` : e);
      }
      const tag = optional(p.tag);
      if (tag !== undefined) spec.tag = tag as number;
      const trunks = asList<number>(p.trunks);
      if (trunks.length) spec.trunks = [...trunks].sort((a, b) => a - b);
      const vlanMode = optional(p.vlan_mode);
      if (vlanMode !== undefined) spec.vlan_mode = vlanMode as Port['vlan_mode'];
      const bondMode = optional(p.bond_mode);
      if (bondMode !== undefined) spec.bond_mode = bondMode as Port['bond_mode'];
      const lacp = optional(p.lacp);
      if (lacp !== undefined) spec.lacp = lacp as Port['lacp'];
      spec.external_ids = smap(p.external_ids);
      spec.other_config = smap(p.other_config);
      if (errors.length) spec.error = errors.join('; ');
      ports[str(p.name)] = spec;
    }
    const spec: BridgeState = {
      datapath_type: (str(b.datapath_type) || 'system') as Bridge['datapath_type'],
      stp_enable: b.stp_enable === true,
      external_ids: smap(b.external_ids),
      other_config: smap(b.other_config),
      ports: sortObj(ports),
    };
    const ctl = asList(b.controller)
      .map((u) => raw.controllers.get(u))
      .filter((t): t is string => typeof t === 'string')
      .sort();
    if (ctl.length) spec.controller = ctl;
    const fm = optional(b.fail_mode);
    if (fm !== undefined) spec.fail_mode = fm as Bridge['fail_mode'];
    if (localError) spec.error = localError;
    bridges[name] = spec;
  }
  return { bridges: sortObj(bridges) };
}

function sortObj<T>(o: Record<string, T>): Record<string, T> {
  // the default sort compares strings as `<` does, natively (no comparator call per pair)
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return out;
}
