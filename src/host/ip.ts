/**
 * IP address helpers: parse and print IPv4/IPv6 addresses and prefixes the way iproute2 and
 * nftables print them (inet_ntop, RFC 5952), so that the document and the host compare equal.
 */

export type Family = 4 | 6;

export function parseV4(s: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x, i) => x > 255 || (m[i + 1].length > 1 && m[i + 1].startsWith('0')))) return undefined;
  return o;
}

export function parseV6(s: string): number[] | undefined {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(s)) return undefined;
  let str = s.toLowerCase();
  const lastColon = str.lastIndexOf(':');
  if (lastColon < 0) return undefined;
  if (str.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(str.slice(lastColon + 1));
    if (!v4) return undefined;
    str = str.slice(0, lastColon + 1) + ((v4[0] << 8) | v4[1]).toString(16) + ':' + ((v4[2] << 8) | v4[3]).toString(16);
  }
  const tail: number[] = [];
  const parts = str.split('::');
  if (parts.length > 2) return undefined;
  const group = (p: string): number[] | undefined => {
    if (p === '') return [];
    const out: number[] = [];
    for (const g of p.split(':')) {
      if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = group(parts[0]);
  if (!head) return undefined;
  const want = 8 - tail.length;
  if (parts.length === 1) {
    if (head.length !== want) return undefined;
    return [...head, ...tail];
  }
  const rest = group(parts[1]);
  if (!rest) return undefined;
  const zeros = want - head.length - rest.length;
  if (zeros < 1) return undefined;
  return [...head, ...new Array(zeros).fill(0), ...rest, ...tail];
}

export function formatV4(o: number[]): string {
  return o.join('.');
}

/** inet_ntop style: longest run (≥ 2) of zero groups becomes ::, lowercase, no leading zeros. */
export function formatV6(w: number[]): string {
  let best = -1,
    bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) best = -1;
  // IPv4-mapped / compatible forms as inet_ntop prints them
  if (
    best === 0 &&
    (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff)) &&
    !(bestLen === 6 && w[6] === 0 && w[7] <= 1)
  ) {
    const v4 = `${w[6] >> 8}.${w[6] & 255}.${w[7] >> 8}.${w[7] & 255}`;
    return bestLen === 6 ? `::${v4}` : `::ffff:${v4}`;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return hex.slice(0, best).join(':') + '::' + hex.slice(best + bestLen).join(':');
}

export interface Ip {
  family: Family;
  /** bytes (4 or 16) */
  bytes: number[];
}

export function parseIp(s: string): Ip | undefined {
  const v4 = parseV4(s);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseV6(s);
  if (v6) return { family: 6, bytes: v6.flatMap((x) => [x >> 8, x & 255]) };
  return undefined;
}

export function formatIp(ip: Ip): string {
  if (ip.family === 4) return formatV4(ip.bytes);
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((ip.bytes[i] << 8) | ip.bytes[i + 1]);
  return formatV6(w);
}

/** Canonical address text, or undefined when `s` is not an IP address. */
export function canonIp(s: string): string | undefined {
  const ip = parseIp(s);
  return ip ? formatIp(ip) : undefined;
}

export interface Cidr {
  ip: Ip;
  len: number;
}

export function parseCidr(s: string, defaultLen = true): Cidr | undefined {
  const [a, l, extra] = s.split('/');
  if (extra !== undefined) return undefined;
  const ip = parseIp(a);
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (l === undefined) return defaultLen ? { ip, len: max } : undefined;
  if (!/^\d{1,3}$/.test(l)) return undefined;
  const len = Number(l);
  if (len > max) return undefined;
  return { ip, len };
}

/** An interface address: the address as given (host bits kept) with its prefix length. */
export function canonAddress(s: string): string | undefined {
  const c = parseCidr(s, false);
  return c ? `${formatIp(c.ip)}/${c.len}` : undefined;
}

export function network(c: Cidr): Cidr {
  const bytes = c.ip.bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, c.len - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
  return { ip: { family: c.ip.family, bytes }, len: c.len };
}

/**
 * A route destination: `default` (IPv4 default), `::/0` (IPv6 default) or a network prefix
 * with host bits cleared (`10.9.0.0/16`, a host route `10.9.0.1/32`).
 */
export function canonDestination(s: string, via?: string): string | undefined {
  if (s === 'default' || s === '0.0.0.0/0')
    return via && parseIp(via)?.family === 6 && s === 'default' ? '::/0' : 'default';
  if (s === '::/0' || s === 'default6') return '::/0';
  const c = parseCidr(s, true);
  if (!c) return undefined;
  if (c.len === 0) return c.ip.family === 4 ? 'default' : '::/0';
  const n = network(c);
  return `${formatIp(n.ip)}/${n.len}`;
}

export function destinationFamily(dst: string): Family {
  if (dst === 'default') return 4;
  if (dst === '::/0') return 6;
  return dst.includes(':') ? 6 : 4;
}
