/**
 * Input forms for net: the op-dbus array (`interfaces: [{name, type, ipv4: {enabled, dhcp,
 * address: [{ip, prefix}], gateway}}]`), address lists, and canonical address/prefix keys.
 */
import type { NormalizeContext, Obj } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import { arrayToMap } from '../../core/normalize.js';
import { canonAddress, canonDestination, canonIp } from '../../host/ip.js';

const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

const OPDBUS_TYPES: Record<string, string> = {
  ethernet: 'device',
  physical: 'device',
  device: 'device',
  bridge: 'bridge',
  'linux-bridge': 'bridge',
  veth: 'veth',
  dummy: 'dummy',
  'ovs-bridge': 'ovs',
  'ovs-interface': 'ovs',
  'ovs-internal': 'ovs',
};

/** op-dbus `ipv4: {enabled, dhcp, address: [{ip, prefix}], gateway}` (and ipv6) into addresses/routes. */
function fromOpDbus(spec: Obj, ptr: string, ctx: NormalizeContext): Obj {
  const out: Obj = { ...spec };
  if (out.kind === 'ovs-bridge') out.kind = 'ovs';
  if (typeof out.type === 'string' && out.kind === undefined && OPDBUS_TYPES[out.type]) {
    out.kind = OPDBUS_TYPES[out.type];
    delete out.type;
  } else if (out.type !== undefined) {
    ctx.refuse(
      `${ptr}/type`,
      `op-dbus interface type ${JSON.stringify(out.type)} is not supported`,
      `use one of ${Object.keys(OPDBUS_TYPES).join(', ')}, ovs-port (an OVS internal port with properties.parent_bridge), or opd's kind`,
    );
    delete out.type;
  }
  if (typeof out.controller === 'string' && out.master === undefined) {
    out.master = out.controller;
    delete out.controller;
  }
  for (const fam of ['ipv4', 'ipv6'] as const) {
    const v = out[fam];
    if (!isObj(v)) continue;
    delete out[fam];
    for (const k of Object.keys(v)) {
      if (!['enabled', 'dhcp', 'address', 'addresses', 'gateway', 'dns'].includes(k))
        ctx.refuse(
          `${ptr}/${fam}/${esc(k)}`,
          `op-dbus ${fam}.${k} is not supported`,
          `an op-dbus ${fam} block has enabled, dhcp, address [{ip, prefix}], gateway and dns`,
        );
    }
    if (Array.isArray(v.dns) && v.dns.length) {
      ctx.warn(
        `${ptr}/${fam}/dns`,
        `op-dbus ${fam}.dns (${v.dns.map(String).join(', ')}) is accepted but net does not act on it: no resolver is configured`,
        'list the servers in the dns plugin (plugins.dns.servers) to configure the resolver',
      );
    }
    if (v.enabled === false) {
      // op-dbus: the interface has no addresses of this family; opd removes every address the
      // document does not name (not the kernel's fe80::)
      if (!isObj(out.addresses) && !Array.isArray(out.addresses)) out.addresses = {};
      out.prune = { ...(isObj(out.prune) ? out.prune : {}), addresses: true };
      ctx.warn(
        `${ptr}/${fam}/enabled`,
        `${fam}.enabled: false: every address of this interface that the document does not name is removed${fam === 'ipv4' ? " (IPv6 ones too, except the kernel's fe80::)" : ''}`,
      );
      continue;
    }
    if (out.up === undefined) out.up = true; // op-dbus configures (and brings up) an interface with addressing
    if (v.dhcp === true) {
      ctx.refuse(
        `${ptr}/${fam}/dhcp`,
        `op-dbus ${fam}.dhcp: true is not supported: opd does not run a DHCP client`,
        'give static addresses (address: [{ip, prefix}]), or run a DHCP client as a systemd unit (e.g. dhclient@<ifname>.service) with the systemd plugin',
      );
    }
    const addrs: Obj = isObj(out.addresses) ? { ...out.addresses } : {};
    if (Array.isArray(out.addresses)) for (const a of out.addresses) if (typeof a === 'string') addrs[a] = {};
    const list = Array.isArray(v.address) ? v.address : Array.isArray(v.addresses) ? v.addresses : [];
    list.forEach((a: unknown, i: number) => {
      const key =
        isObj(a) && typeof a.ip === 'string'
          ? `${a.ip}/${a.prefix ?? (fam === 'ipv4' ? 32 : 128)}`
          : typeof a === 'string'
            ? a
            : undefined;
      if (key === undefined) return;
      addrs[key] = {};
      ctx.remap(`${ptr}/addresses/${esc(canonAddress(key) ?? key)}`, `${ptr}/${fam}/address/${i}`);
    });
    if (Object.keys(addrs).length) out.addresses = addrs;
    if (typeof v.gateway === 'string') {
      const routes: Obj = isObj(out.routes) ? { ...out.routes } : {};
      routes[fam === 'ipv4' ? 'default' : '::/0'] = { via: v.gateway };
      out.routes = routes;
      ctx.remap(`${ptr}/routes/${esc(fam === 'ipv4' ? 'default' : '::/0')}`, `${ptr}/${fam}/gateway`);
    }
  }
  return out;
}

function normIface(spec: unknown, ptr: string, ctx: NormalizeContext): unknown {
  if (!isObj(spec)) return spec;
  const out = fromOpDbus(spec, ptr, ctx);
  if (Array.isArray(out.addresses)) {
    const m: Obj = {};
    out.addresses.forEach((a: unknown, i: number) => {
      const k = typeof a === 'string' ? a : `#${i}`;
      m[k] = typeof a === 'string' ? {} : a;
      ctx.remap(`${ptr}/addresses/${esc(canonAddress(k) ?? k)}`, `${ptr}/addresses/${i}`);
    });
    out.addresses = m;
  }
  if (isObj(out.addresses)) {
    const m: Obj = {};
    for (const [k, v] of Object.entries(out.addresses)) m[canonAddress(k) ?? k] = v;
    out.addresses = m;
  }
  if (isObj(out.routes)) {
    const m: Obj = {};
    for (const [k, v] of Object.entries(out.routes)) {
      const r = isObj(v) ? { ...v } : v;
      if (isObj(r) && typeof r.via === 'string') r.via = canonIp(r.via) ?? r.via;
      const via = isObj(r) && typeof r.via === 'string' ? r.via : undefined;
      const key = canonDestination(k, via) ?? k;
      m[key] = r;
      if (key !== k) ctx.remap(`${ptr}/routes/${esc(key)}`, `${ptr}/routes/${esc(k)}`);
    }
    out.routes = m;
  }
  return out;
}

export function normalizeNet(section: unknown, ctx: NormalizeContext): unknown {
  if (!isObj(section)) return section;
  const out: Obj = { ...section };
  out.interfaces = arrayToMap(out.interfaces, 'name', '/plugins/net/interfaces', ctx);
  if (!isObj(out.interfaces)) return out;
  const ifaces: Obj = {};
  for (const [n, spec] of Object.entries(out.interfaces))
    ifaces[n] = normIface(spec, `/plugins/net/interfaces/${esc(n)}`, ctx);
  // op-dbus: a Linux bridge lists its ports; each port becomes an interface with `master`
  for (const [n, spec] of Object.entries(ifaces)) {
    if (!isObj(spec) || !Array.isArray(spec.ports) || spec.kind !== 'bridge') continue;
    for (const p of spec.ports) {
      if (typeof p !== 'string') continue;
      const port = ifaces[p];
      const cur = isObj(port) ? port : {};
      if (cur.master === undefined) ifaces[p] = { ...cur, master: n };
    }
    const { ports: _p, ...rest } = spec;
    ifaces[n] = rest;
  }
  out.interfaces = ifaces;
  return out;
}
