/**
 * libvirt: the section as written (sizes with units, raw XML, op-dbus forms) → the canonical form the plan compares.
 */
import type { Obj } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import { mapEntries } from '../../core/shorthand.js';
import { parseXml, toXml } from './xml.js';
import { prefixOf } from './model.js';

const MiB = 1024 * 1024;

function parseSize(v: unknown, unitBytes: number): unknown {
  if (typeof v !== 'string') return v;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMGT](?:i?B)?|[kmgt]|B|bytes)$/.exec(v.trim());
  if (!m) return v;
  const u = m[2];
  const pow = { b: 0, k: 1, m: 2, g: 3, t: 4 }[u[0].toLowerCase() as 'k'] ?? 0;
  const dec = /^[KMGT]B$/.test(u);
  const bytes = Number(m[1]) * (dec ? 1000 : 1024) ** pow;
  const out = bytes / unitBytes;
  return Number.isInteger(out) ? out : v;
}

/** Canonical text of a raw XML definition (formatting and attribute quoting do not matter). */
function canonicalDocXml(text: string): string {
  try {
    return toXml(parseXml(text));
  } catch {
    return text;
  }
}

export function normalizeSection(section: unknown): unknown {
  if (!isObj(section)) return section;
  const out: Obj = { ...section };
  if (isObj(out.domains))
    out.domains = mapEntries(out.domains, (spec) => {
      const s: Obj = { ...spec };
      if (s.memory !== undefined) s.memory = parseSize(s.memory, MiB);
      if (typeof s.xml === 'string') s.xml = canonicalDocXml(s.xml);
      if (Array.isArray(s.interfaces))
        s.interfaces = s.interfaces.map((i) =>
          isObj(i) && typeof i.mac === 'string' ? { ...i, mac: i.mac.toLowerCase() } : i,
        );
      return s;
    });
  if (isObj(out.networks))
    out.networks = mapEntries(out.networks, (spec) => {
      if (!isObj(spec.ip) || typeof spec.ip.netmask !== 'string' || spec.ip.prefix !== undefined) return spec;
      if (!/^(\d+\.){3}\d+$/.test(spec.ip.netmask)) return spec;
      const { netmask, ...ip } = spec.ip;
      return { ...spec, ip: { ...ip, prefix: prefixOf(netmask as string) } };
    });
  if (isObj(out.pools))
    out.pools = mapEntries(out.pools, (spec) =>
      isObj(spec.volumes)
        ? {
            ...spec,
            volumes: mapEntries(spec.volumes, (vs) =>
              vs.capacity !== undefined ? { ...vs, capacity: parseSize(vs.capacity, 1) } : vs,
            ),
          }
        : spec,
    );
  return out;
}
