/**
 * OpenFlow flows in ovs-ofctl's printed form, as pure functions: parse a `dump-flows` line,
 * normalize a document's flow the way ovs-ofctl prints it (field names, protocol shorthands,
 * masked addresses, hex registers, upper-case reserved ports, OpenFlow 1.3 action names), and
 * render a flow as an `add-flows` line. Matches are maps (field order never matters); actions
 * are ordered lists.
 */
import { createHash } from 'node:crypto';

export type Match = Record<string, string | true>;

export interface Flow {
  table: number;
  priority: number;
  match: Match;
  actions: string[];
  idle_timeout: number;
  hard_timeout: number;
}

/** ovs-ofctl's default priority (OFP_DEFAULT_PRIORITY): not printed. */
export const DEFAULT_PRIORITY = 32768;

/** The upper 32 bits of every cookie opd gives a flow ("opd\0"); the lower 32 name the flow. */
export const COOKIE_PREFIX = 0x6f706400n;
export const COOKIE_MASK = '0xffffffff00000000';
export const COOKIE_MATCH = `cookie=0x${(COOKIE_PREFIX << 32n).toString(16)}/${COOKIE_MASK}`;

/** The cookie of flow `name`: opd's prefix and 32 bits of sha256(name) (`cookie-0x6f706400…` names that cookie itself). */
export function cookieOf(name: string): string {
  // the name `opd show` gives a flow of opd's whose name it cannot know: its own cookie
  const own = /^cookie-(0x6f706400[0-9a-f]{8})$/.exec(name);
  if (own) return own[1];
  const low = BigInt('0x' + createHash('sha256').update(name).digest('hex').slice(0, 8));
  return '0x' + ((COOKIE_PREFIX << 32n) | low).toString(16);
}

export function isOpdCookie(cookie: string): boolean {
  try {
    return BigInt(cookie) >> 32n === COOKIE_PREFIX;
  } catch {
    return false;
  }
}

/** Protocol shorthands ovs-ofctl prints instead of dl_type (and nw_proto). */
const SHORTHANDS: Record<string, { dl_type: number; nw_proto?: number }> = {
  ip: { dl_type: 0x0800 },
  icmp: { dl_type: 0x0800, nw_proto: 1 },
  igmp: { dl_type: 0x0800, nw_proto: 2 },
  tcp: { dl_type: 0x0800, nw_proto: 6 },
  udp: { dl_type: 0x0800, nw_proto: 17 },
  sctp: { dl_type: 0x0800, nw_proto: 132 },
  ipv6: { dl_type: 0x86dd },
  tcp6: { dl_type: 0x86dd, nw_proto: 6 },
  udp6: { dl_type: 0x86dd, nw_proto: 17 },
  sctp6: { dl_type: 0x86dd, nw_proto: 132 },
  icmp6: { dl_type: 0x86dd, nw_proto: 58 },
  arp: { dl_type: 0x0806 },
  rarp: { dl_type: 0x8035 },
  mpls: { dl_type: 0x8847 },
  mplsm: { dl_type: 0x8848 },
};

/** Other spellings ovs-ofctl accepts → the name it prints. */
const ALIASES: Record<string, string> = {
  eth_src: 'dl_src',
  eth_dst: 'dl_dst',
  eth_type: 'dl_type',
  ip_src: 'nw_src',
  ip_dst: 'nw_dst',
  ip_proto: 'nw_proto',
  ip_ttl: 'nw_ttl',
  ip_frag: 'nw_frag',
  tcp_src: 'tp_src',
  tcp_dst: 'tp_dst',
  udp_src: 'tp_src',
  udp_dst: 'tp_dst',
  sctp_src: 'tp_src',
  sctp_dst: 'tp_dst',
  icmpv4_type: 'icmp_type',
  icmpv4_code: 'icmp_code',
  icmpv6_type: 'icmp_type',
  icmpv6_code: 'icmp_code',
};

/** Match fields opd knows how ovs-ofctl prints (the schema accepts these and the aliases). */
export const MATCH_FIELDS = [
  ...Object.keys(SHORTHANDS),
  ...Object.keys(ALIASES),
  'in_port',
  'dl_src',
  'dl_dst',
  'dl_type',
  'dl_vlan',
  'dl_vlan_pcp',
  'vlan_tci',
  'nw_src',
  'nw_dst',
  'nw_proto',
  'nw_tos',
  'nw_ecn',
  'nw_ttl',
  'nw_frag',
  'arp_spa',
  'arp_tpa',
  'arp_op',
  'arp_sha',
  'arp_tha',
  'ipv6_src',
  'ipv6_dst',
  'ipv6_label',
  'tp_src',
  'tp_dst',
  'icmp_type',
  'icmp_code',
  'tcp_flags',
  'ct_state',
  'ct_zone',
  'ct_mark',
  'pkt_mark',
  'metadata',
  ...Array.from({ length: 16 }, (_, i) => `reg${i}`),
].sort();

const HEX_FIELDS = new Set(['metadata', 'pkt_mark', 'ct_mark', ...Array.from({ length: 16 }, (_, i) => `reg${i}`)]);
const DEC_FIELDS = new Set([
  'tp_src',
  'tp_dst',
  'icmp_type',
  'icmp_code',
  'nw_proto',
  'nw_tos',
  'nw_ecn',
  'nw_ttl',
  'dl_vlan',
  'dl_vlan_pcp',
  'arp_op',
  'ct_zone',
]);
const MAC_FIELDS = new Set(['dl_src', 'dl_dst', 'arp_sha', 'arp_tha']);
const IP4_FIELDS = new Set(['nw_src', 'nw_dst', 'arp_spa', 'arp_tpa']);
const CT_FLAGS = ['new', 'est', 'rel', 'rpl', 'inv', 'trk', 'snat', 'dnat'];
const TCP_FLAGS = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr', 'ns'];
const RESERVED_PORTS = new Set([
  'IN_PORT',
  'TABLE',
  'NORMAL',
  'FLOOD',
  'ALL',
  'CONTROLLER',
  'LOCAL',
  'ANY',
  'NONE',
  'UNSET',
]);

function num(v: string): number | undefined {
  if (/^0x[0-9a-f]+$/i.test(v)) return parseInt(v, 16);
  if (/^[0-9]+$/.test(v)) return parseInt(v, 10);
  return undefined;
}

/** a masked value `v/m`: each part normalized by f */
function masked(v: string, f: (s: string) => string): string {
  const i = v.indexOf('/');
  return i < 0 ? f(v) : `${f(v.slice(0, i))}/${f(v.slice(i + 1))}`;
}

function hex(v: string): string {
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(v)) return v;
  return '0x' + BigInt(v).toString(16);
}

function ip4(v: string): string {
  const [addr, plen] = v.split('/');
  const parts = addr.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return v;
  let bits: number | undefined;
  if (plen === undefined) return parts.join('.');
  if (/^\d+$/.test(plen)) bits = Number(plen);
  else {
    const m = plen.split('.').map(Number);
    if (m.length === 4) {
      const n = ((m[0] << 24) | (m[1] << 16) | (m[2] << 8) | m[3]) >>> 0;
      const ones = n.toString(2).replace(/0+$/, '');
      if (!ones.includes('0')) bits = n === 0 ? 0 : ones.length;
    }
  }
  if (bits === undefined || bits > 32) return v;
  if (bits === 32) return parts.join('.');
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const a = ((((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0) & mask) >>> 0;
  return `${[a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.')}/${bits}`;
}

function flags(v: string, order: string[]): string {
  if (/^(0x[0-9a-f]+|[0-9]+)$/i.test(v)) return String(Number(v));
  const items = v.match(/[+-][a-z]+/g);
  if (!items || items.join('') !== v) return v;
  const by = new Map(items.map((x) => [x.slice(1), x[0]]));
  return (
    order
      .filter((f) => by.has(f))
      .map((f) => by.get(f)! + f)
      .join('') +
    [...by.keys()]
      .filter((f) => !order.includes(f))
      .map((f) => by.get(f)! + f)
      .join('')
  );
}

function port(v: string): string {
  const s = v.replace(/^"(.*)"$/, '$1');
  return RESERVED_PORTS.has(s.toUpperCase()) ? s.toUpperCase() : s;
}

function fieldValue(field: string, v: string): string {
  if (field === 'in_port') return port(v);
  if (HEX_FIELDS.has(field)) return masked(v, hex);
  if (DEC_FIELDS.has(field)) {
    const n = num(v);
    return n === undefined ? v : String(n);
  }
  if (MAC_FIELDS.has(field)) return v.toLowerCase();
  if (IP4_FIELDS.has(field)) return ip4(v);
  if (field === 'dl_type') {
    const n = num(v);
    return n === undefined ? v : '0x' + n.toString(16).padStart(4, '0');
  }
  if (field === 'ipv6_src' || field === 'ipv6_dst') return v.toLowerCase();
  if (field === 'ct_state') return flags(v, CT_FLAGS);
  if (field === 'tcp_flags') return flags(v, TCP_FLAGS);
  return v;
}

/** A match as written (aliases, dl_type/nw_proto, values as the user wrote them) → as printed. */
export function normalizeMatch(input: Record<string, unknown>): Match {
  const m: Record<string, string> = {};
  let dlType: number | undefined;
  let nwProto: number | undefined;
  for (const [k0, v0] of Object.entries(input)) {
    const k = ALIASES[k0] ?? k0;
    const bare = v0 === true || v0 === '' || v0 === null;
    if (k in SHORTHANDS && bare) {
      const s = SHORTHANDS[k];
      dlType = s.dl_type;
      if (s.nw_proto !== undefined) nwProto = s.nw_proto;
      continue;
    }
    const v = String(v0);
    if (k === 'dl_type' && num(v) !== undefined) {
      dlType = num(v);
      continue;
    }
    if (k === 'nw_proto' && num(v) !== undefined) {
      nwProto = num(v);
      continue;
    }
    m[k] = v;
  }
  const out: Match = {};
  const arp = dlType === 0x0806 || dlType === 0x8035;
  // the protocol: a shorthand when ovs-ofctl has one
  if (dlType !== undefined) {
    const hit = Object.entries(SHORTHANDS).find(
      ([, s]) => s.dl_type === dlType && s.nw_proto === (arp ? undefined : nwProto),
    );
    const base = Object.entries(SHORTHANDS).find(([, s]) => s.dl_type === dlType && s.nw_proto === undefined);
    if (hit && !arp) out[hit[0]] = true;
    else if (base) {
      out[base[0]] = true;
      if (nwProto !== undefined) out[arp ? 'arp_op' : 'nw_proto'] = String(nwProto);
    } else {
      out.dl_type = '0x' + dlType.toString(16).padStart(4, '0');
      if (nwProto !== undefined) out.nw_proto = String(nwProto);
    }
  } else if (nwProto !== undefined) out.nw_proto = String(nwProto);
  for (const [k0, v] of Object.entries(m)) {
    let k = k0;
    if (arp && k === 'nw_src') k = 'arp_spa';
    if (arp && k === 'nw_dst') k = 'arp_tpa';
    out[k] = fieldValue(k, v);
  }
  return out;
}

/** Split at top-level commas (not inside parentheses or brackets). */
export function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(' || ch === '[') depth++;
    if (ch === ')' || ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '' || out.length) out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

/** One action as written → as ovs-ofctl prints it under OpenFlow 1.3. */
export function normalizeAction(a0: string): string[] {
  const a = a0.trim();
  const lower = a.toLowerCase();
  if (lower === 'drop') return [];
  if (RESERVED_PORTS.has(a.toUpperCase()) && a.toUpperCase() !== 'CONTROLLER') return [a.toUpperCase()];
  if (lower === 'controller') return ['CONTROLLER:65535'];
  let m = /^controller:(\d+)$/i.exec(a);
  if (m) return [`CONTROLLER:${m[1]}`];
  m = /^output:(.+)$/i.exec(a);
  if (m) {
    const p = port(m[1]);
    return [RESERVED_PORTS.has(p) ? p : `output:${p}`];
  }
  if (lower === 'strip_vlan') return ['pop_vlan'];
  m = /^mod_(nw_src|nw_dst|dl_src|dl_dst|tp_src|tp_dst):(.+)$/i.exec(a);
  if (m) {
    const field = {
      nw_src: 'ip_src',
      nw_dst: 'ip_dst',
      dl_src: 'eth_src',
      dl_dst: 'eth_dst',
      tp_src: 'tcp_src',
      tp_dst: 'tcp_dst',
    }[m[1].toLowerCase()]!;
    return [`set_field:${m[2]}->${field}`];
  }
  m = /^load:([^-]+)->(.+)$/i.exec(a);
  if (m) return [`load:${hex(m[1])}->${m[2]}`];
  m = /^set_field:(.+)->(reg\d+|metadata|pkt_mark|ct_mark)$/i.exec(a);
  if (m) return [`set_field:${masked(m[1], hex)}->${m[2]}`];
  m = /^set_field:(.+)->(eth_src|eth_dst)$/i.exec(a);
  if (m) return [`set_field:${m[1].toLowerCase()}->${m[2]}`];
  m = /^resubmit:(.+)$/i.exec(a);
  if (m) return [`resubmit:${port(m[1])}`];
  return [a];
}

export function normalizeActions(actions: string[]): string[] {
  const out: string[] = [];
  for (const a of actions) for (const part of splitTop(a)) out.push(...normalizeAction(part));
  return out;
}

/** The printed actions text (an empty list is `drop`). */
export function actionsText(actions: string[]): string {
  return actions.length ? actions.join(',') : 'drop';
}

/** A match rendered in ovs-ofctl's order where it matters (protocol first), deterministic otherwise. */
export function matchText(match: Match): string {
  const proto = Object.keys(match).filter((k) => k in SHORTHANDS && match[k] === true);
  const rest = Object.keys(match)
    .filter((k) => !proto.includes(k))
    .sort();
  return [...proto, ...rest.map((k) => (match[k] === true ? k : `${k}=${match[k]}`))].join(',');
}

/** The flow as a line for `ovs-ofctl add-flows` (also its human summary). */
export function flowText(f: Flow): string {
  const parts = [`table=${f.table}`, `priority=${f.priority}`];
  if (f.idle_timeout) parts.push(`idle_timeout=${f.idle_timeout}`);
  if (f.hard_timeout) parts.push(`hard_timeout=${f.hard_timeout}`);
  const m = matchText(f.match);
  if (m) parts.push(m);
  return `${parts.join(',')},actions=${actionsText(f.actions)}`;
}

const HEADER = new Set([
  'cookie',
  'duration',
  'table',
  'n_packets',
  'n_bytes',
  'idle_timeout',
  'hard_timeout',
  'idle_age',
  'hard_age',
  'importance',
  'send_flow_rem',
  'check_overlap',
  'reset_counts',
  'no_packet_counts',
  'no_byte_counts',
]);

/** One line of `ovs-ofctl --names --no-stats dump-flows` → cookie (0x0 when not printed) and flow; undefined for other lines. */
export function parseDumpLine(line: string): { cookie: string; flow: Flow } | undefined {
  // with --no-stats a zero cookie is not printed: " priority=0 actions=NORMAL"
  const t = line.trim();
  if (/^(OFPST|NXST)_FLOW/.test(t)) return undefined;
  const ai = t.indexOf('actions=');
  if (ai < 0) return undefined;
  const left = t.slice(0, ai).replace(/[,\s]+$/, '');
  const actions = t.slice(ai + 'actions='.length).trim();
  let cookie = '0x0';
  const flow: Flow = { table: 0, priority: DEFAULT_PRIORITY, match: {}, actions: [], idle_timeout: 0, hard_timeout: 0 };
  for (const seg of left.split(', ')) {
    const eq = seg.indexOf('=');
    const key = eq < 0 ? seg : seg.slice(0, eq);
    if (HEADER.has(key)) {
      const v = seg.slice(eq + 1);
      if (key === 'cookie') cookie = v;
      else if (key === 'table') flow.table = Number(v);
      else if (key === 'idle_timeout') flow.idle_timeout = Number(v);
      else if (key === 'hard_timeout') flow.hard_timeout = Number(v);
      continue;
    }
    for (const item of splitTop(seg)) {
      const e = item.indexOf('=');
      if (e < 0) flow.match[item] = true;
      else if (item.slice(0, e) === 'priority') flow.priority = Number(item.slice(e + 1));
      else flow.match[item.slice(0, e)] = item.slice(e + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  flow.actions = actions === 'drop' ? [] : splitTop(actions).map((a) => a.replace(/:"([^"]*)"/g, ':$1'));
  return { cookie, flow };
}
