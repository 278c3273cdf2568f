/**
 * Pure planning for net: a resource diff of one interface becomes ip commands (for `ip -batch`),
 * one change for the link, one per address and one per route.
 */
import type { Operation } from 'fast-json-patch';
import type { Change, ResourceDiff } from '../../core/plugin.js';
import { canonical } from '../../core/canonical.js';
import { CREATABLE, gatewayRoutes, globalAddresses, type HostNet, type IfaceState } from './host.js';
import { destinationFamily } from '../../host/ip.js';
import type { Interface as IfaceSpec, Route } from './section.gen.js';

export interface NetChangeData {
  ifname: string;
  /** ip commands without the leading `ip` (one `ip -batch` line each) */
  cmds: string[][];
  /** create of a veth pair: skip `link add` when the pair exists already (its other end created it) */
  veth?: { peer: string };
  /** delete of a link: a missing link is already gone */
  deleteLink?: boolean;
  /** move the global addresses and gateway routes of `from` to `ifname`; cmds are computed at apply
   * time from what `from` holds then (except what the document itself adds to `ifname`) */
  takeOver?: { from: string; keepAddrs: string[]; keepRoutes: string[] };
}

const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

function opsUnder(ops: Operation[], prefix: string): Operation[] {
  return ops.filter((o) => o.path === prefix || o.path.startsWith(prefix + '/'));
}

function routeDst(dst: string): string {
  if (dst === 'default') return '0.0.0.0/0';
  return dst;
}

function defaultMetric(dst: string): number {
  return destinationFamily(dst) === 6 ? 1024 : 0;
}

export function routeCmd(verb: 'add' | 'replace' | 'del', ifname: string, dst: string, spec: Route): string[] {
  const cmd = ['route', verb, routeDst(dst)];
  if (typeof spec.via === 'string') cmd.push('via', spec.via);
  cmd.push('dev', ifname);
  if (typeof spec.metric === 'number') cmd.push('metric', String(spec.metric));
  return cmd;
}

function describeRoute(dst: string, spec: Route | undefined): string {
  if (!spec) return dst;
  return [
    dst,
    typeof spec.via === 'string' ? `via ${spec.via}` : '',
    typeof spec.metric === 'number' ? `metric ${spec.metric}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

/** `ip link set` commands for the link fields the document names that differ. */
function linkSets(ifname: string, cur: IfaceState | undefined, want: IfaceSpec): { cmds: string[][]; text: string[] } {
  const cmds: string[][] = [];
  const text: string[] = [];
  const differs = (k: 'mtu' | 'master' | 'up') =>
    want[k] !== undefined && (cur === undefined || canonical(cur[k]) !== canonical(want[k]));
  if (differs('mtu')) {
    cmds.push(['link', 'set', 'dev', ifname, 'mtu', String(want.mtu)]);
    text.push(cur?.mtu !== undefined ? `mtu ${cur.mtu} → ${want.mtu}` : `mtu ${want.mtu}`);
  }
  if (differs('master')) {
    if (want.master === null) cmds.push(['link', 'set', 'dev', ifname, 'nomaster']);
    else cmds.push(['link', 'set', 'dev', ifname, 'master', String(want.master)]);
    text.push(cur?.master ? `master ${cur.master} → ${want.master ?? 'none'}` : `master ${want.master ?? 'none'}`);
  }
  if (differs('up')) {
    cmds.push(['link', 'set', 'dev', ifname, want.up ? 'up' : 'down']);
    text.push(want.up ? 'up' : 'down');
  }
  return { cmds, text };
}

function createLinkCmds(ifname: string, want: IfaceSpec): { cmds: string[][]; data: Partial<NetChangeData> } {
  const kind = want.kind ?? 'device';
  if (kind === 'bridge') return { cmds: [['link', 'add', 'name', ifname, 'type', 'bridge']], data: {} };
  if (kind === 'dummy') return { cmds: [['link', 'add', 'name', ifname, 'type', 'dummy']], data: {} };
  if (kind === 'veth') {
    const peer = String(want.peer);
    return { cmds: [['link', 'add', 'name', ifname, 'type', 'veth', 'peer', 'name', peer]], data: { veth: { peer } } };
  }
  // device / ovs: opd does not create it; the check fails clearly when it is missing
  return { cmds: [['link', 'show', 'dev', ifname]], data: {} };
}

export function planInterface(diff: ResourceDiff): Change<NetChangeData>[] {
  const { name: ifname, address } = diff;
  const base = { resource: address, plugin: 'net' };
  const changes: Change<NetChangeData>[] = [];

  if (diff.action === 'delete') {
    const kind = String(diff.current?.kind ?? 'device');
    if (!CREATABLE.has(kind)) {
      return [
        {
          ...base,
          address,
          action: 'delete',
          summary: `${kind} link`,
          ops: diff.ops,
          refused: `opd deletes only links of the kinds it creates (bridge, veth, dummy); ${ifname} is a ${kind} link`,
          refusedHint: `remove state: absent from ${address}, or remove the device with the tool that owns it (the ovs plugin for OVS interfaces)`,
          data: { ifname, cmds: [] } satisfies NetChangeData,
        },
      ];
    }
    return [
      {
        ...base,
        address,
        action: 'delete',
        summary: `${kind} link${diff.current?.peer ? ` (and its peer ${diff.current.peer})` : ''}`,
        ops: diff.ops,
        data: { ifname, cmds: [['link', 'del', 'dev', ifname]], deleteLink: true } satisfies NetChangeData,
      },
    ];
  }

  const want = diff.desired as IfaceSpec;
  const cur = diff.current as IfaceState | undefined;
  const wantAddrs = want.addresses ?? {};
  const wantRoutes = want.routes ?? {};
  const kind = want.kind ?? cur?.kind ?? 'device';
  const addrChange = (verb: 'add' | 'del', a: string, after?: string[]): Change<NetChangeData> => ({
    ...base,
    address: `${address}/addresses/${a}`,
    action: verb === 'add' ? 'create' : 'delete',
    summary: 'address',
    ...(after ? { after } : {}),
    ops: opsUnder(diff.ops, `/addresses/${esc(a)}`),
    data: { ifname, cmds: [['addr', verb, a, 'dev', ifname]] },
  });

  const recreate =
    cur !== undefined &&
    CREATABLE.has(kind) &&
    ((want.kind !== undefined && cur.kind !== want.kind) || (want.peer !== undefined && cur.peer !== want.peer));

  if (diff.action === 'create' || recreate) {
    const { cmds, data } = createLinkCmds(ifname, want);
    const sets = linkSets(ifname, undefined, { ...want, master: want.master ?? undefined });
    const addrCmds = Object.keys(wantAddrs)
      .sort()
      .map((a) => ['addr', 'add', a, 'dev', ifname]);
    const routeCmds = Object.keys(wantRoutes)
      .sort()
      .map((d) => routeCmd('add', ifname, d, wantRoutes[d]));
    const what = [
      kind === 'veth' ? `veth (peer ${want.peer})` : CREATABLE.has(kind) ? kind : `existing ${kind} link`,
      ...sets.text,
    ].join(', ');
    if (recreate) {
      // the host has another kind of link (or a veth with another peer) under this name
      return [
        {
          ...base,
          address,
          action: 'recreate',
          destructive: true,
          summary: what,
          reason: `host has ${cur!.kind}${cur!.peer ? ` with peer ${cur!.peer}` : ''}`,
          ops: diff.ops,
          data: {
            ifname,
            cmds: [['link', 'del', 'dev', ifname], ...cmds, ...sets.cmds, ...addrCmds, ...routeCmds],
          } satisfies NetChangeData,
        },
      ];
    }
    changes.push({
      ...base,
      address,
      action: 'create',
      summary: what,
      ops: diff.ops.filter((o) => !o.path.startsWith('/addresses') && !o.path.startsWith('/routes')),
      data: { ifname, cmds: [...cmds, ...sets.cmds], ...data } satisfies NetChangeData,
    });
    const moves = takeOverChanges(diff, want, [address], undefined);
    changes.push(...moves);
    const moved = moves.map((m) => m.address);
    const addrChanges: string[] = [];
    for (const a of Object.keys(wantAddrs).sort()) {
      const add = addrChange('add', a, [address, ...moved]);
      addrChanges.push(add.address);
      changes.push(add);
    }
    for (const d of Object.keys(wantRoutes).sort()) {
      changes.push({
        ...base,
        address: `${address}/routes/${d}`,
        action: 'create',
        summary: `route ${describeRoute(d, wantRoutes[d])}`,
        after: [address, ...moved, ...addrChanges],
        ops: opsUnder(diff.ops, `/routes/${esc(d)}`),
        data: { ifname, cmds: [routeCmd('add', ifname, d, wantRoutes[d])] } satisfies NetChangeData,
      });
    }
    return changes;
  }

  // update
  const c = cur!;
  const sets = linkSets(ifname, c, want);
  if (sets.cmds.length) {
    changes.push({
      ...base,
      address,
      action: 'update',
      summary: sets.text.join(', '),
      ops: diff.ops.filter((o) => !o.path.startsWith('/addresses') && !o.path.startsWith('/routes')),
      data: { ifname, cmds: sets.cmds } satisfies NetChangeData,
    });
  }
  const moves = takeOverChanges(diff, want, sets.cmds.length ? [address] : [], c);
  changes.push(...moves);
  const linkAfter = [...(sets.cmds.length ? [address] : []), ...moves.map((m) => m.address)];
  const curAddrs = c.addresses ?? {};
  const addrChanges: string[] = [];
  for (const a of [...new Set([...Object.keys(curAddrs), ...Object.keys(wantAddrs)])].sort()) {
    if (a in wantAddrs && !(a in curAddrs)) {
      const add = addrChange('add', a, linkAfter);
      addrChanges.push(add.address);
      changes.push(add);
    } else if (!(a in wantAddrs) && a in curAddrs) changes.push(addrChange('del', a));
  }
  const curRoutes = c.routes ?? {};
  for (const d of [...new Set([...Object.keys(curRoutes), ...Object.keys(wantRoutes)])].sort()) {
    const ra = `${address}/routes/${d}`;
    const ops = opsUnder(diff.ops, `/routes/${esc(d)}`);
    const w = wantRoutes[d];
    const r = curRoutes[d];
    const after = [...linkAfter, ...addrChanges];
    if (w && !r) {
      changes.push({
        ...base,
        address: ra,
        action: 'create',
        summary: `route ${describeRoute(d, w)}`,
        after,
        ops,
        data: { ifname, cmds: [routeCmd('add', ifname, d, w)] } satisfies NetChangeData,
      });
    } else if (!w && r) {
      // a route the document marks absent (never one it does not name)
      changes.push({
        ...base,
        address: ra,
        action: 'delete',
        summary: `route ${describeRoute(d, r)}`,
        ops,
        data: { ifname, cmds: [routeCmd('del', ifname, d, r)] } satisfies NetChangeData,
      });
    } else if (w && r && canonical(pick(r, w)) !== canonical(w)) {
      const curMetric = typeof r.metric === 'number' ? r.metric : defaultMetric(d);
      const text: string[] = [];
      if (w.via !== undefined && w.via !== r.via) text.push(`via ${r.via ?? 'none'} → ${w.via}`);
      if (w.metric !== undefined && w.metric !== curMetric) text.push(`metric ${curMetric} → ${w.metric}`);
      const cmds =
        w.metric !== undefined && w.metric !== curMetric
          ? [
              routeCmd('del', ifname, d, { ...r, metric: curMetric }),
              routeCmd('add', ifname, d, { via: w.via ?? r.via, metric: w.metric }),
            ]
          : [routeCmd('replace', ifname, d, { via: w.via ?? r.via, metric: curMetric })];
      changes.push({
        ...base,
        address: ra,
        action: 'update',
        summary: `route ${d}: ${text.join(', ')}`,
        after,
        ops,
        data: { ifname, cmds } satisfies NetChangeData,
      });
    }
  }
  return changes;
}

/** `o` with only the keys `like` has. */
function pick(o: object, like: object): object {
  return Object.fromEntries(Object.entries(o).filter(([k]) => k in like));
}

/** One `move` change per link of `take_over` that still holds addresses or routes. */
function takeOverChanges(
  diff: ResourceDiff,
  want: IfaceSpec,
  after: string[],
  cur: IfaceState | undefined,
): Change<NetChangeData>[] {
  if (!want.take_over) return [];
  const done = new Set(cur?.take_over ?? []);
  const keepAddrs = Object.keys(want.addresses ?? {}).sort();
  const keepRoutes = Object.keys(want.routes ?? {}).sort();
  return want.take_over
    .filter((f) => !done.has(f))
    .map((from) => ({
      resource: diff.address,
      plugin: 'net',
      address: `${diff.address}/take_over/${from}`,
      action: 'move',
      summary: `addresses and gateway routes of ${from} → ${diff.name}`,
      reason: `${from} is a port of ${diff.name}: what it holds belongs on ${diff.name}`,
      after,
      ops: opsUnder(diff.ops, '/take_over'),
      data: { ifname: diff.name, cmds: [], takeOver: { from, keepAddrs, keepRoutes } } satisfies NetChangeData,
    }));
}

/**
 * The ip commands of a take-over, from what `from` holds now: its gateway routes and global
 * addresses go (routes first, so that none is left pointing at a link without its subnet), and
 * come back on `to`, except those the document itself adds to `to` (its own changes follow).
 */
export function takeOverCmds(
  host: HostNet,
  to: string,
  t: { from: string; keepAddrs: string[]; keepRoutes: string[] },
): string[][] {
  const l = host.links.get(t.from);
  if (!l) return [];
  const onTo = new Set(host.links.get(to) ? globalAddresses(host.links.get(to)!) : []);
  const routes = gatewayRoutes(host, t.from);
  const addrs = globalAddresses(l);
  const spec = (r: HostNet['routes'][number]['r']): Route => ({ via: r.gateway, metric: r.metric ?? 0 });
  return [
    ...routes.map(({ dst, r }) => routeCmd('del', t.from, dst, spec(r))),
    ...addrs.map((a) => ['addr', 'del', a, 'dev', t.from]),
    ...addrs.filter((a) => !t.keepAddrs.includes(a) && !onTo.has(a)).map((a) => ['addr', 'add', a, 'dev', to]),
    ...routes.filter(({ dst }) => !t.keepRoutes.includes(dst)).map(({ dst, r }) => routeCmd('add', to, dst, spec(r))),
  ];
}
