/**
 * Reading the host's links, addresses and routes through iproute2's JSON output, and running
 * ip commands (optionally inside a network namespace: `ip -n NAME`).
 */
import { ExecFailure, runMutate, runRead, type ExecResult } from '../../exec.js';
import { ApplyContext, type Settings } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { netnsOf } from '../../host/netns.js';

export { netnsOf };
import { canonAddress, canonDestination, canonIp, type Family } from '../../host/ip.js';
import type { Address, Interface as IfaceSpec, Route } from './section.gen.js';

/** An interface as read: the document's shape, but the host may hold links of kinds a document cannot name (vlan, tun, …). */
export type IfaceState = Omit<IfaceSpec, 'kind'> & { kind?: string };

export const IP_HINT = 'install iproute2 (apt-get install iproute2)';

/** `ip` that only looks (`-j … show`): the read door. */
export function ip(settings: Settings, args: string[]): Promise<ExecResult> {
  return ipVia(settings, args);
}

/** `ip` that changes the host (`-batch -`): the mutate door, an apply only. */
export function ipMutate(ctx: ApplyContext, args: string[], input?: string): Promise<ExecResult> {
  return ipVia(ctx, args, input);
}

async function ipVia(via: Settings | ApplyContext, args: string[], input?: string): Promise<ExecResult> {
  const settings = via instanceof ApplyContext ? via.settings : via;
  const ns = netnsOf(settings);
  const argv = [...(ns ? ['-n', ns] : []), ...args];
  const opts = { backend: 'iproute2', installHint: IP_HINT, input };
  try {
    return await (via instanceof ApplyContext ? runMutate(via, 'ip', argv, opts) : runRead('ip', argv, opts));
  } catch (err) {
    if (ns && err instanceof ExecFailure && /Cannot open network namespace|Invalid "netns"/.test(err.stderr))
      throw new OpdError('backend-unavailable', `network namespace ${ns} does not exist`, {
        hint: 'create it (ip netns add NAME) or drop --netns / OPD_NETNS',
      });
    throw err;
  }
}

interface RawAddr {
  family: string;
  local: string;
  prefixlen: number;
  scope?: string;
}

export interface RawLink {
  ifname: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  link?: string;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_slave_kind?: string };
  addr_info?: RawAddr[];
}

export interface RawRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  type?: string;
  protocol?: string;
  nexthops?: unknown[];
}

export interface HostNet {
  links: Map<string, RawLink>;
  routes: { family: Family; dst: string; r: RawRoute }[];
}

function parseJson<T>(out: string, what: string): T {
  try {
    return JSON.parse(out || '[]') as T;
  } catch (err) {
    throw new OpdError('backend-failed', `could not parse the JSON of ${what}: ${(err as Error).message}`, {
      hint: 'iproute2 with JSON output (-j) is needed (iproute2 ≥ 4.14)',
    });
  }
}

/** Three reads whatever the number of interfaces: addresses (with link details), IPv4 and IPv6 routes. */
export async function readHost(settings: Settings, withRoutes = true): Promise<HostNet> {
  const [a, r4, r6] = await Promise.all([
    ip(settings, ['-j', '-d', 'addr', 'show']),
    withRoutes ? ip(settings, ['-j', '-4', 'route', 'show', 'table', 'main']) : undefined,
    withRoutes ? ip(settings, ['-j', '-6', 'route', 'show', 'table', 'main']) : undefined,
  ]);
  const links = new Map<string, RawLink>();
  for (const l of parseJson<RawLink[]>(a.stdout, 'ip addr show')) links.set(l.ifname, l);
  const routes: HostNet['routes'] = [];
  for (const [family, res] of [
    [4, r4],
    [6, r6],
  ] as const) {
    if (!res) continue;
    for (const r of parseJson<RawRoute[]>(res.stdout, 'ip route show')) {
      if ((r.type && r.type !== 'unicast') || !r.dev || r.nexthops) continue;
      const dst = r.dst === 'default' ? (family === 4 ? 'default' : '::/0') : canonDestination(r.dst);
      if (!dst) continue;
      routes.push({ family, dst, r });
    }
  }
  return { links, routes };
}

export const CREATABLE = new Set(['bridge', 'veth', 'dummy']);

export function kindOf(l: RawLink): string {
  const k = l.linkinfo?.info_kind;
  if (!k) return 'device';
  if (k === 'openvswitch') return 'ovs';
  return k;
}

function isLinkLocal6(a: RawAddr): boolean {
  return a.family === 'inet6' && a.scope === 'link';
}

/**
 * One interface in the section's shape. `want` (the document's spec, may be undefined for
 * `opd show`) steers which of several routes to the same destination is reported.
 */
export function toIface(
  l: RawLink,
  host: HostNet,
  want: IfaceState | undefined,
  opts: { show?: boolean } = {},
): IfaceState {
  const wantKind = want?.kind;
  const kind = wantKind === 'device' || wantKind === 'ovs' ? wantKind : kindOf(l);
  const out: IfaceState = { kind };
  if (kindOf(l) === 'veth') {
    if (l.link) out.peer = l.link;
    else if (l.link_netnsid !== undefined && want?.peer !== undefined) out.peer = want.peer; // the peer lives in another namespace
  }
  out.master = l.master ?? null;
  out.up = (l.flags ?? []).includes('UP');
  if (l.mtu !== undefined) out.mtu = l.mtu;
  const wantAddrs = want?.addresses ?? {};
  const addresses: Record<string, Address> = {};
  for (const a of l.addr_info ?? []) {
    if (a.family !== 'inet' && a.family !== 'inet6') continue;
    const c = canonAddress(`${a.local}/${a.prefixlen}`);
    if (!c) continue;
    if (isLinkLocal6(a) && !(c in wantAddrs)) continue; // the kernel's own fe80:: addresses
    addresses[c] = {};
  }
  out.addresses = addresses;
  const wantRoutes = want?.routes ?? {};
  const routes: Record<string, Route> = {};
  const byDst = new Map<string, RawRoute[]>();
  for (const { dst, r } of host.routes) {
    if (r.dev !== l.ifname) continue;
    if (opts.show && (r.protocol === 'kernel' || !r.gateway)) continue;
    byDst.set(dst, [...(byDst.get(dst) ?? []), r]);
  }
  for (const [dst, list] of [...byDst].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const w = wantRoutes[dst];
    const metricOf = (r: RawRoute) => r.metric ?? 0;
    let pick = list.slice().sort((a, b) => metricOf(a) - metricOf(b))[0];
    if (w && typeof w.metric === 'number') pick = list.find((r) => metricOf(r) === w.metric) ?? pick;
    else if (w && typeof w.via === 'string') pick = list.find((r) => r.gateway && canonIp(r.gateway) === w.via) ?? pick;
    const spec: Route = {};
    if (pick.gateway) spec.via = canonIp(pick.gateway) ?? pick.gateway;
    spec.metric = metricOf(pick);
    routes[dst] = spec;
  }
  out.routes = routes;
  return out;
}

/** A global address (not IPv6 link-local, not loopback) of a link, canonical `addr/prefix`. */
export function globalAddresses(l: RawLink): string[] {
  const out: string[] = [];
  for (const a of l.addr_info ?? []) {
    if ((a.family !== 'inet' && a.family !== 'inet6') || a.scope === 'link' || a.scope === 'host') continue;
    const c = canonAddress(`${a.local}/${a.prefixlen}`);
    if (c) out.push(c);
  }
  return out.sort();
}

/** Routes through a link that someone configured (a gateway, not the kernel's or a router advertisement's). */
export function gatewayRoutes(host: HostNet, ifname: string): HostNet['routes'] {
  return host.routes.filter(({ r }) => r.dev === ifname && r.gateway && r.protocol !== 'kernel' && r.protocol !== 'ra');
}

/** What a link still holds that a take-over moves: its global addresses and gateway routes. */
export function heldBy(host: HostNet, ifname: string): string[] {
  const l = host.links.get(ifname);
  if (!l) return [];
  return [...globalAddresses(l), ...gatewayRoutes(host, ifname).map(({ dst }) => `route ${dst}`)];
}
