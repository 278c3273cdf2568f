/**
 * IP addresses and prefixes as iproute2 and nftables print them, so that the document and the
 * host compare equal. Node checks the text (net.isIP: dotted-quad IPv4 without leading zeros,
 * RFC 4291 IPv6) and prints it as inet_ntop does (net.SocketAddress, RFC 5952 with the
 * IPv4-mapped forms); ipaddr.js clears the host bits of a route destination.
 */
import { isIP, SocketAddress } from 'node:net';
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface Cidr {
  /** the address in inet_ntop's text */
  ip: { family: Family; address: string };
  len: number;
}

function familyOf(s: string): Family | undefined {
  if (s.includes('%')) return undefined; // a zone (fe80::1%eth0) is not part of a document's address
  const f = isIP(s);
  return f === 4 || f === 6 ? f : undefined;
}

/** inet_ntop's text of an address that isIP accepted. */
function ntop(s: string, family: Family): string {
  return new SocketAddress({ address: s, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

/** Canonical address text, or undefined when `s` is not an IP address. */
export function canonIp(s: string): string | undefined {
  const f = familyOf(s);
  return f ? ntop(s, f) : undefined;
}

/** `ADDRESS/LEN`, or a bare address (a host: /32, /128) when defaultLen. */
export function parseCidr(s: string, defaultLen = true): Cidr | undefined {
  const [a, l, extra] = s.split('/');
  if (extra !== undefined) return undefined;
  const family = familyOf(a);
  if (!family) return undefined;
  const max = family === 4 ? 32 : 128;
  if (l === undefined && !defaultLen) return undefined;
  if (l !== undefined && !(/^\d{1,3}$/.test(l) && Number(l) <= max)) return undefined;
  return { ip: { family, address: ntop(a, family) }, len: l === undefined ? max : Number(l) };
}

/** An interface address: the address as given (host bits kept) with its prefix length. */
export function canonAddress(s: string): string | undefined {
  const c = parseCidr(s, false);
  return c ? `${c.ip.address}/${c.len}` : undefined;
}

/** The network of a prefix: its host bits cleared. */
export function network(c: Cidr): Cidr {
  const kind = c.ip.family === 4 ? ipaddr.IPv4 : ipaddr.IPv6;
  const net = kind.networkAddressFromCIDR(`${c.ip.address}/${c.len}`).toString();
  return { ip: { family: c.ip.family, address: ntop(net, c.ip.family) }, len: c.len };
}

/**
 * A route destination: `default` (IPv4 default), `::/0` (IPv6 default) or a network prefix
 * with host bits cleared (`10.9.0.0/16`, a host route `10.9.0.1/32`).
 */
export function canonDestination(s: string, via?: string): string | undefined {
  if (s === 'default' || s === '0.0.0.0/0') return via && familyOf(via) === 6 && s === 'default' ? '::/0' : 'default';
  if (s === '::/0' || s === 'default6') return '::/0';
  const c = parseCidr(s, true);
  if (!c) return undefined;
  if (c.len === 0) return c.ip.family === 4 ? 'default' : '::/0';
  const n = network(c);
  return `${n.ip.address}/${n.len}`;
}

export function destinationFamily(dst: string): Family {
  if (dst === 'default') return 4;
  if (dst === '::/0') return 6;
  return dst.includes(':') ? 6 : 4;
}
