/**
 * Reading the Open vSwitch database: one `ovs-vsctl --format=json` call lists every table we
 * need; the rows are turned into opd's section shape.
 */
import { run } from '../../exec.js';
import { OpdError } from '../../core/errors.js';
import type { Obj, Settings } from '../../core/plugin.js';

export const DEFAULT_DB = 'unix:/run/openvswitch/db.sock';

export function dbUrl(settings: Settings): string {
  return settings.ovsDb ?? process.env.OPD_OVS_DB ?? DEFAULT_DB;
}

const INSTALL = 'install openvswitch-switch (apt-get install openvswitch-switch) or point --ovs-db at a running ovsdb-server';

/** Run ovs-vsctl against the configured database; errors say what to do. */
export async function vsctl(settings: Settings, args: string[], opts: { wait?: boolean; timeoutS?: number } = {}): Promise<string> {
  const db = dbUrl(settings);
  const t = opts.timeoutS ?? 30;
  const argv = [`--db=${db}`, `--timeout=${t}`, ...(opts.wait ? [] : ['--no-wait']), ...args];
  try {
    return (await run('ovs-vsctl', argv, { timeout: (t + 5) * 1000, backend: 'ovs', installHint: INSTALL })).stdout;
  } catch (err) {
    if (err instanceof OpdError && err.kind === 'backend-failed') {
      const m = err.message;
      if (/database connection failed|Connection refused|No such file or directory/.test(m))
        throw new OpdError('backend-unavailable', `cannot reach the OVS database at ${db}`, {
          hint: 'start ovsdb-server (systemctl start openvswitch-switch) or give --ovs-db / OPD_OVS_DB',
          cause: err,
        });
      if (/killed by SIGALRM|exit 142|timed out/.test(m))
        throw new OpdError('backend-failed', `ovs-vsctl gave up after ${t}s against ${db}: ovs-vswitchd did not confirm the change`, {
          hint: 'check that ovs-vswitchd is running and look at its log',
          retryable: false,
          cause: err,
        });
    }
    throw err;
  }
}

type OvsValue = unknown;

/** Decode OVSDB JSON values: ["set", […]], ["map", [[k, v]…]], ["uuid", u]. */
export function decode(v: OvsValue): unknown {
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string') {
    const [tag, body] = v as [string, unknown];
    if (tag === 'set') return (body as OvsValue[]).map(decode);
    if (tag === 'map') return Object.fromEntries((body as [OvsValue, OvsValue][]).map(([k, x]) => [String(decode(k)), decode(x)]));
    if (tag === 'uuid' || tag === 'named-uuid') return body;
  }
  return v;
}

/** A set column holding zero or one value decodes to [] or the value. */
function optional(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? v[0] : undefined;
  return v;
}

function asList(v: unknown): string[] {
  return Array.isArray(v) ? (v as string[]) : v === undefined || v === null ? [] : [v as string];
}

export interface Row {
  [k: string]: unknown;
}

export function table(json: string): Row[] {
  const t = JSON.parse(json) as { data: OvsValue[][]; headings: string[] };
  return t.data.map((r) => Object.fromEntries(t.headings.map((h, i) => [h, decode(r[i])])));
}

export interface RawDb {
  vswitchd: boolean;
  bridges: Row[];
  ports: Map<string, Row>;
  ifaces: Map<string, Row>;
}

export const BRIDGE_COLS = '_uuid,name,ports,datapath_type,fail_mode,stp_enable,external_ids,other_config';
export const PORT_COLS = '_uuid,name,interfaces,tag,trunks,vlan_mode,bond_mode,lacp,external_ids,other_config';
export const IFACE_COLS = '_uuid,name,type,options,mtu_request,error,external_ids';

export async function readDb(settings: Settings): Promise<RawDb> {
  const out = await vsctl(settings, [
    '--format=json',
    '--', '--columns=datapath_types', 'list', 'Open_vSwitch',
    '--', `--columns=${BRIDGE_COLS}`, 'list', 'Bridge',
    '--', `--columns=${PORT_COLS}`, 'list', 'Port',
    '--', `--columns=${IFACE_COLS}`, 'list', 'Interface',
  ], { timeoutS: 10 });
  const parts = out.split('\n').filter((l) => l.trim());
  if (parts.length !== 4) throw new OpdError('backend-failed', `unexpected ovs-vsctl output (${parts.length} tables instead of 4)`);
  const [ovs, bridges, ports, ifaces] = parts.map(table);
  const dpTypes = asList(ovs[0]?.datapath_types);
  return {
    vswitchd: dpTypes.length > 0,
    bridges,
    ports: new Map(ports.map((p) => [p._uuid as string, p])),
    ifaces: new Map(ifaces.map((i) => [i._uuid as string, i])),
  };
}

function ifaceSpec(i: Row): Obj {
  const options = { ...((i.options as Obj) ?? {}) };
  const out: Obj = { type: (i.type as string) || 'system' };
  if (typeof options.peer === 'string') {
    out.peer = options.peer;
    delete options.peer;
  }
  out.options = options;
  const mtu = optional(i.mtu_request);
  if (mtu !== undefined) out.mtu_request = mtu;
  out.external_ids = (i.external_ids as Obj) ?? {};
  return out;
}

/** Convert database rows to the section shape: bridges → ports (→ interfaces for bonds). */
export function toSection(raw: RawDb): { bridges: Obj } {
  const bridges: Obj = {};
  for (const b of raw.bridges) {
    const name = b.name as string;
    const ports: Obj = {};
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
      const ifs = asList(p.interfaces).map((u) => raw.ifaces.get(u)).filter((x): x is Row => !!x);
      const spec: Obj = {};
      const errors: string[] = [];
      if (ifs.length === 1 && ifs[0].name === p.name) {
        const { external_ids: _ignored, ...flat } = ifaceSpec(ifs[0]);
        Object.assign(spec, flat);
      } else spec.interfaces = Object.fromEntries(ifs.map((i) => [i.name as string, ifaceSpec(i)]).sort());
      for (const i of ifs) {
        const e = optional(i.error);
        if (typeof e === 'string' && e) errors.push(ifs.length > 1 ? `${i.name}: ${e}` : e);
      }
      const tag = optional(p.tag);
      if (tag !== undefined) spec.tag = tag;
      const trunks = asList(p.trunks as unknown as string[]) as unknown as number[];
      if (trunks.length) spec.trunks = [...trunks].sort((a, b) => a - b);
      for (const k of ['vlan_mode', 'bond_mode', 'lacp']) {
        const v = optional(p[k]);
        if (v !== undefined) spec[k] = v;
      }
      spec.external_ids = (p.external_ids as Obj) ?? {};
      spec.other_config = (p.other_config as Obj) ?? {};
      if (errors.length) spec.error = errors.join('; ');
      ports[p.name as string] = spec;
    }
    const spec: Obj = {
      datapath_type: (b.datapath_type as string) || 'system',
      stp_enable: b.stp_enable === true,
      external_ids: (b.external_ids as Obj) ?? {},
      other_config: (b.other_config as Obj) ?? {},
      ports: sortObj(ports),
    };
    const fm = optional(b.fail_mode);
    if (fm !== undefined) spec.fail_mode = fm;
    if (localError) spec.error = localError;
    bridges[name] = spec;
  }
  return { bridges: sortObj(bridges) };
}

function sortObj(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
