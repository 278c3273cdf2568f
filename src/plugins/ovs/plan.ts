/** Pure planning for OVS: a resource diff becomes ovs-vsctl command groups, one change each. */
import type { Change, Obj, ResourceDiff } from '../../core/plugin.js';
import { canonical } from '../../core/canonical.js';

export const OWNER_KEY = 'opd_managed';

/** ovs-vsctl value syntax: quote strings (JSON escapes are accepted by ovs-vsctl). */
export function q(v: string): string {
  return JSON.stringify(v);
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fmt(v: unknown): string {
  if (v === undefined) return '(unset)';
  if (Array.isArray(v)) return `[${v.join(',')}]`;
  if (isObj(v)) return JSON.stringify(v);
  return String(v);
}

/** Columns for `set` / `add-port` from a map column: key:"value" each. */
function mapCols(col: string, m: unknown): string[] {
  if (!isObj(m)) return [];
  return Object.entries(m).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${col}:${k}=${q(String(v))}`);
}

export const PORT_SCALARS = ['tag', 'trunks', 'vlan_mode', 'bond_mode', 'lacp'] as const;
export const IFACE_SCALARS = ['type', 'peer', 'mtu_request'] as const;

function portCol(k: string, v: unknown): string {
  if (k === 'trunks') return `trunks=[${(v as number[]).join(',')}]`;
  return `${k}=${typeof v === 'string' ? q(v) : String(v)}`;
}

function ifaceCol(k: string, v: unknown): string {
  if (k === 'type') return `type=${v === 'system' ? '""' : q(String(v))}`;
  if (k === 'peer') return `options:peer=${q(String(v))}`;
  return `${k}=${String(v)}`;
}

function portCols(spec: Obj): string[] {
  const cols: string[] = [];
  for (const k of PORT_SCALARS) if (spec[k] !== undefined) cols.push(portCol(k, spec[k]));
  cols.push(...mapCols('external_ids', { ...(spec.external_ids as Obj), [OWNER_KEY]: 'true' }));
  cols.push(...mapCols('other_config', spec.other_config));
  return cols;
}

function ifaceCols(spec: Obj): string[] {
  const cols: string[] = [];
  for (const k of IFACE_SCALARS) if (spec[k] !== undefined) cols.push(ifaceCol(k, spec[k]));
  cols.push(...mapCols('options', spec.options));
  if (spec.__iface_ext) cols.push(...mapCols('external_ids', spec.__iface_ext));
  return cols;
}

export function createPortCmds(bridge: string, port: string, spec: Obj): string[][] {
  const cmds: string[][] = [];
  const ifaces = isObj(spec.interfaces) ? spec.interfaces : undefined;
  if (ifaces && Object.keys(ifaces).length >= 2) {
    const names = Object.keys(ifaces).sort();
    cmds.push(['add-bond', bridge, port, ...names, ...portCols(spec)]);
    for (const n of names) {
      const i = ifaces[n] as Obj;
      const cols = ifaceCols({ ...i, __iface_ext: i.external_ids });
      if (cols.length) cmds.push(['set', 'Interface', n, ...cols]);
    }
  } else {
    cmds.push(['add-port', bridge, port, ...portCols(spec)]);
    const cols = ifaceCols(spec);
    if (cols.length) cmds.push(['set', 'Interface', port, ...cols]);
  }
  return cmds;
}

function bridgeCols(spec: Obj, owner: boolean): string[] {
  const cols: string[] = [];
  if (spec.datapath_type !== undefined) cols.push(`datapath_type=${spec.datapath_type === 'system' ? '""' : q(String(spec.datapath_type))}`);
  if (spec.fail_mode !== undefined) cols.push(`fail_mode=${spec.fail_mode}`);
  if (spec.stp_enable !== undefined) cols.push(`stp_enable=${spec.stp_enable}`);
  cols.push(...mapCols('external_ids', owner ? { ...(spec.external_ids as Obj), [OWNER_KEY]: 'true' } : spec.external_ids));
  cols.push(...mapCols('other_config', spec.other_config));
  return cols;
}

interface Field {
  key: string;
  from: unknown;
  to: unknown;
}

/** Fields that differ between two objects (maps compared per key; missing in `to` = remove). */
function fieldDiff(cur: Obj, want: Obj, keys: readonly string[]): Field[] {
  const out: Field[] = [];
  for (const k of keys) if (want[k] !== undefined && !same(cur[k], want[k])) out.push({ key: k, from: cur[k], to: want[k] });
  return out;
}

function mapDiff(col: string, table: string, row: string, cur: unknown, want: unknown): { cmds: string[][]; text: string[] } {
  const c = isObj(cur) ? cur : {};
  const w = isObj(want) ? want : undefined;
  if (!w) return { cmds: [], text: [] };
  const cmds: string[][] = [];
  const text: string[] = [];
  for (const [k, v] of Object.entries(w).sort()) {
    if (c[k] !== v) {
      cmds.push(['set', table, row, `${col}:${k}=${q(String(v))}`]);
      text.push(`${col}:${k} ${fmt(c[k])} → ${fmt(v)}`);
    }
  }
  for (const k of Object.keys(c).sort())
    if (!(k in w)) {
      cmds.push(['remove', table, row, col, k]);
      text.push(`${col}:${k} removed`);
    }
  return { cmds, text };
}

function portUpdate(bridge: string, port: string, cur: Obj, want: Obj): { cmds: string[][]; text: string[] } {
  const cmds: string[][] = [];
  const text: string[] = [];
  for (const f of fieldDiff(cur, want, PORT_SCALARS)) {
    cmds.push(['set', 'Port', port, portCol(f.key, f.to)]);
    text.push(`${f.key} ${fmt(f.from)} → ${fmt(f.to)}`);
  }
  for (const col of ['external_ids', 'other_config']) {
    const m = mapDiff(col, 'Port', port, cur[col], want[col]);
    cmds.push(...m.cmds);
    text.push(...m.text);
  }
  const wi = isObj(want.interfaces) ? want.interfaces : undefined;
  if (wi) {
    const ci = isObj(cur.interfaces) ? cur.interfaces : {};
    for (const n of Object.keys(wi).sort()) {
      if (!(n in ci)) {
        cmds.push(['add-bond-iface', port, n]);
        const cols = ifaceCols({ ...(wi[n] as Obj), __iface_ext: (wi[n] as Obj).external_ids });
        if (cols.length) cmds.push(['set', 'Interface', n, ...cols]);
        text.push(`bond member ${n} added`);
      } else {
        const sub = ifaceUpdate(n, ci[n] as Obj, wi[n] as Obj);
        cmds.push(...sub.cmds);
        text.push(...sub.text.map((t) => `${n} ${t}`));
      }
    }
    for (const n of Object.keys(ci).sort())
      if (!(n in wi)) {
        cmds.push(['del-bond-iface', port, n]);
        text.push(`bond member ${n} removed`);
      }
  } else {
    const sub = ifaceUpdate(port, cur, want, true);
    cmds.push(...sub.cmds);
    text.push(...sub.text);
  }
  void bridge;
  return { cmds, text };
}

function ifaceUpdate(name: string, cur: Obj, want: Obj, flat = false): { cmds: string[][]; text: string[] } {
  const cmds: string[][] = [];
  const text: string[] = [];
  for (const f of fieldDiff(cur, want, IFACE_SCALARS)) {
    cmds.push(['set', 'Interface', name, ifaceCol(f.key, f.to)]);
    text.push(`${f.key} ${fmt(f.from)} → ${fmt(f.to)}`);
  }
  const m = mapDiff('options', 'Interface', name, cur.options, want.options);
  cmds.push(...m.cmds);
  text.push(...m.text);
  if (!flat) {
    const e = mapDiff('external_ids', 'Interface', name, cur.external_ids, want.external_ids);
    cmds.push(...e.cmds);
    text.push(...e.text);
  }
  return { cmds, text };
}

export interface OvsChangeData {
  cmds: string[][];
  /** interfaces whose vswitchd error column decides this change's outcome */
  ifaces: string[];
}

function ifaceNames(port: string, spec: Obj): string[] {
  return isObj(spec.interfaces) ? Object.keys(spec.interfaces).sort() : [port];
}

export function planBridge(diff: ResourceDiff): Change[] {
  const { name: br, address } = diff;
  const faults: Record<string, string> = {};
  for (const [a, m] of Object.entries(diff.faults ?? {})) {
    const port = a.slice(address.length + '/ports/'.length);
    if (a.startsWith(address + '/ports/') && port) faults[port] = m;
  }
  const base = { resource: address, plugin: 'ovs' };
  const changes: Change[] = [];
  if (diff.action === 'delete') {
    return [{ ...base, address, action: 'delete', summary: 'bridge and all its ports', ops: diff.ops, data: { cmds: [['del-br', br]], ifaces: [] } satisfies OvsChangeData }];
  }
  const want = diff.desired!;
  const wantPorts = isObj(want.ports) ? want.ports : {};
  if (diff.action === 'create') {
    changes.push({ ...base, address, action: 'create', summary: 'bridge', ops: diff.ops.filter((o) => !o.path.startsWith('/ports/')), data: { cmds: [['add-br', br], ['set', 'Bridge', br, ...bridgeCols(want, true)]], ifaces: [br] } satisfies OvsChangeData });
    for (const p of Object.keys(wantPorts).sort()) {
      const spec = wantPorts[p] as Obj;
      changes.push({ ...base, address: `${address}/ports/${p}`, action: 'create', summary: describePort(spec), after: [address], ops: diff.ops.filter((o) => o.path === `/ports/${p}`), data: { cmds: createPortCmds(br, p, spec), ifaces: ifaceNames(p, spec) } satisfies OvsChangeData });
    }
    return changes;
  }
  const cur = diff.current!;
  const own = diff.faults?.[address];
  if (own)
    changes.push({ ...base, address, action: 'repair', summary: 'bridge', reason: `vswitchd: ${own}`, ops: [], data: { cmds: [], ifaces: [br] } satisfies OvsChangeData });
  // bridge columns
  const bcmds: string[][] = [];
  const btext: string[] = [];
  for (const f of fieldDiff(cur, want, ['datapath_type', 'fail_mode', 'stp_enable'])) {
    bcmds.push(['set', 'Bridge', br, ...bridgeCols({ [f.key]: f.to }, false)]);
    btext.push(`${f.key} ${fmt(f.from)} → ${fmt(f.to)}`);
  }
  for (const col of ['external_ids', 'other_config']) {
    const m = mapDiff(col, 'Bridge', br, cur[col], want[col]);
    bcmds.push(...m.cmds);
    btext.push(...m.text);
  }
  if (bcmds.length)
    changes.push({ ...base, address, action: 'update', summary: btext.join(', '), ops: diff.ops.filter((o) => !o.path.startsWith('/ports')), data: { cmds: bcmds, ifaces: [] } satisfies OvsChangeData });
  // ports
  const curPorts = isObj(cur.ports) ? cur.ports : {};
  const names = new Set([...Object.keys(curPorts), ...Object.keys(wantPorts)]);
  for (const p of [...names].sort()) {
    const a = `${address}/ports/${p}`;
    const ops = diff.ops.filter((o) => o.path === `/ports/${p}` || o.path.startsWith(`/ports/${p}/`));
    const w = wantPorts[p] as Obj | undefined;
    const c = curPorts[p] as Obj | undefined;
    if (w && !c) {
      changes.push({ ...base, address: a, action: 'create', summary: describePort(w), ops, data: { cmds: createPortCmds(br, p, w), ifaces: ifaceNames(p, w) } satisfies OvsChangeData });
    } else if (!w && c) {
      changes.push({ ...base, address: a, action: 'delete', summary: 'port', ops, data: { cmds: [['del-port', br, p]], ifaces: [] } satisfies OvsChangeData });
    } else if (w && c) {
      if (faults[p]) {
        changes.push({ ...base, address: a, action: 'recreate', summary: 'port', reason: `vswitchd: ${faults[p]}`, ops, data: { cmds: [['del-port', br, p], ...createPortCmds(br, p, w)], ifaces: ifaceNames(p, w) } satisfies OvsChangeData });
        continue;
      }
      const u = portUpdate(br, p, c, w);
      if (u.cmds.length) changes.push({ ...base, address: a, action: 'update', summary: u.text.join(', '), ops, data: { cmds: u.cmds, ifaces: ifaceNames(p, w) } satisfies OvsChangeData });
    }
  }
  return changes;
}

function describePort(spec: Obj): string {
  const bits: string[] = [];
  if (isObj(spec.interfaces)) bits.push(`bond of ${Object.keys(spec.interfaces).sort().join(', ')}`);
  else bits.push(`${spec.type ?? 'system'} port`);
  if (spec.tag !== undefined) bits.push(`tag ${spec.tag}`);
  if (spec.trunks !== undefined) bits.push(`trunks ${fmt(spec.trunks)}`);
  if (spec.peer !== undefined) bits.push(`peer ${spec.peer}`);
  return bits.join(', ');
}
