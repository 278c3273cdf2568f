/**
 * nftables rule text from the structured rule form (validated fields only), named chain
 * priorities, and canonical comparison keys for rules as `nft -j` prints them back.
 */
import type { Obj } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import { OpdError } from '../../core/errors.js';
import { parseCidr } from '../../host/ip.js';

const PRIO_INET: Record<string, number> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};
const PRIO_BRIDGE: Record<string, number> = { dstnat: -300, filter: -200, out: 100, srcnat: 300 };

export function priorityNumber(family: string, p: unknown): unknown {
  if (typeof p !== 'string') return p;
  const table = family === 'bridge' ? PRIO_BRIDGE : PRIO_INET;
  return p in table ? table[p] : p;
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

function set(items: string[]): string {
  return items.length === 1 ? items[0] : `{ ${items.join(', ')} }`;
}

function ports(v: unknown): string {
  return set(list(v).map((p) => String(p)));
}

function addrMatch(dir: 'saddr' | 'daddr', v: unknown, where: string): string {
  const items = list(v).map(String);
  const fams = new Set(items.map((a) => parseCidr(a, true)?.ip.family));
  if (fams.has(undefined))
    throw new OpdError('invalid-document', `${where}: ${dir} holds something that is not an address or prefix`, {
      hint: 'write addresses such as 10.0.0.0/24 or fd00::/64',
    });
  if (fams.size > 1)
    throw new OpdError('invalid-document', `${where}: ${dir} mixes IPv4 and IPv6 addresses (${items.join(', ')})`, {
      hint: 'write one rule for IPv4 and one for IPv6',
    });
  return `${fams.has(6) ? 'ip6' : 'ip'} ${dir} ${set(items)}`;
}

/** nft rule text for a rule of the document (a raw string is passed through). */
export function ruleText(rule: unknown, where: string): string {
  if (typeof rule === 'string') return rule.trim().replace(/\s+/g, ' ');
  if (!isObj(rule)) throw new OpdError('invalid-document', `${where}: a rule is a string or an object`);
  const r = rule;
  const parts: string[] = [];
  if (r.iif !== undefined) parts.push(`iifname ${set(list(r.iif).map((i) => `"${i}"`))}`);
  if (r.oif !== undefined) parts.push(`oifname ${set(list(r.oif).map((i) => `"${i}"`))}`);
  if (r.saddr !== undefined) parts.push(addrMatch('saddr', r.saddr, where));
  if (r.daddr !== undefined) parts.push(addrMatch('daddr', r.daddr, where));
  const protos = list(r.proto).map(String);
  const hasPorts = r.sport !== undefined || r.dport !== undefined;
  if (hasPorts) {
    if (!protos.length)
      throw new OpdError('invalid-document', `${where}: ports need a proto (tcp, udp, sctp)`, {
        hint: 'add proto: tcp (or [tcp, udp])',
      });
    if (protos.length === 1) {
      if (r.sport !== undefined) parts.push(`${protos[0]} sport ${ports(r.sport)}`);
      if (r.dport !== undefined) parts.push(`${protos[0]} dport ${ports(r.dport)}`);
    } else {
      parts.push(`meta l4proto ${set(protos)}`);
      if (r.sport !== undefined) parts.push(`th sport ${ports(r.sport)}`);
      if (r.dport !== undefined) parts.push(`th dport ${ports(r.dport)}`);
    }
  } else if (protos.length) parts.push(`meta l4proto ${set(protos)}`);
  if (r.ct_state !== undefined) parts.push(`ct state ${set(list(r.ct_state).map(String))}`);
  if (r.counter === true) parts.push('counter');
  if (typeof r.log_prefix === 'string') parts.push(`log prefix "${r.log_prefix}"`);
  const action = String(r.action);
  if (action === 'jump' || action === 'goto') parts.push(`${action} ${r.target}`);
  else if (action === 'snat' || action === 'dnat') parts.push(`${action} to ${r.to}`);
  else parts.push(action);
  if (typeof r.comment === 'string') parts.push(`comment "${r.comment}"`);
  return parts.join(' ');
}

/** Counters change on their own: compare rules without their values. */
function stripCounters(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripCounters);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'counter' && isObj(x)) out[k] = {};
    else out[k] = stripCounters(x);
  }
  return out;
}

export interface JsonRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  expr: unknown[];
  comment?: string;
}

/** What makes two rules the same: their expressions (counter values aside) and comment. */
export function ruleKey(r: JsonRule): string {
  return JSON.stringify({ expr: stripCounters(r.expr), comment: r.comment ?? null });
}

/** `nft -a list ruleset` text → rule text by `family table chain handle`. */
export function parseTextRules(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let table: string | undefined;
  let chain: string | undefined;
  for (const line of text.split('\n')) {
    let m = /^table (\S+) (\S+) \{/.exec(line);
    if (m) {
      table = `${m[1]} ${m[2].replace(/^"|"$/g, '')}`;
      chain = undefined;
      continue;
    }
    m = /^\tchain (\S+) \{/.exec(line);
    if (m) {
      chain = m[1].replace(/^"|"$/g, '');
      continue;
    }
    if (/^\t\}/.test(line)) {
      chain = undefined;
      continue;
    }
    m = /^\t\t(.*) # handle (\d+)$/.exec(line);
    if (m && table && chain)
      out.set(`${table} ${chain} ${m[2]}`, m[1].replace(/counter packets \d+ bytes \d+/g, 'counter'));
  }
  return out;
}
