/**
 * libvirt XML ↔ the document's spec shape. Reading extracts only what a spec can express, so
 * libvirt's own additions (uuid, addresses, controllers, aliases, generated MACs, default
 * attributes) never reach the diff. Writing patches the live definition in place, so what the
 * document does not name stays as the host has it (and the uuid is kept).
 */
import type { Obj } from '../../core/plugin.js';
import { child, el, kids, path, scaledBytes, setChild, ensureChild, type XNode } from './xml.js';
import { isObj } from '../../core/diff.js';

const MiB = 1024 * 1024;

export const IFACE_KINDS = ['network', 'bridge', 'ovs_bridge', 'user'] as const;
export const DISK_SOURCES = ['file', 'block', 'pool', 'volume'] as const;

/* ------------------------------------------------------------------ domains */

export function diskFromXml(d: XNode): Obj {
  const src = child(d, 'source');
  const out: Obj = { device: d.attrs.device ?? 'disk' };
  if (d.attrs.type === 'file' && src?.attrs.file) out.file = src.attrs.file;
  if (d.attrs.type === 'block' && src?.attrs.dev) out.block = src.attrs.dev;
  if (d.attrs.type === 'volume') {
    if (src?.attrs.pool) out.pool = src.attrs.pool;
    if (src?.attrs.volume) out.volume = src.attrs.volume;
  }
  const fmt = child(d, 'driver')?.attrs.type;
  if (fmt) out.format = fmt;
  const bus = child(d, 'target')?.attrs.bus;
  if (bus) out.bus = bus;
  out.readonly = !!child(d, 'readonly');
  return out;
}

export function ifaceFromXml(i: XNode): Obj {
  const out: Obj = {};
  const src = child(i, 'source');
  const vp = child(i, 'virtualport')?.attrs.type;
  if (i.attrs.type === 'network') out.network = src?.attrs.network;
  else if (i.attrs.type === 'bridge' && vp === 'openvswitch') out.ovs_bridge = src?.attrs.bridge;
  else if (i.attrs.type === 'bridge') out.bridge = src?.attrs.bridge;
  else if (i.attrs.type === 'user') out.user = true;
  const mac = child(i, 'mac')?.attrs.address;
  if (mac) out.mac = mac.toLowerCase();
  const model = child(i, 'model')?.attrs.type;
  if (model) out.model = model;
  const tag = path(i, 'vlan', 'tag')?.attrs.id;
  if (tag !== undefined) out.vlan = Number(tag);
  return out;
}

export function graphicsFromXml(g: XNode | undefined): Obj {
  if (!g) return { type: 'none' };
  const out: Obj = { type: g.attrs.type };
  const auto = g.attrs.autoport === 'yes' || g.attrs.port === '-1' || g.attrs.port === undefined;
  out.port = auto ? 'auto' : Number(g.attrs.port);
  const listen = g.attrs.listen ?? child(g, 'listen')?.attrs.address;
  if (listen) out.listen = listen;
  return out;
}

/** The spec fields of a domain from its (inactive) XML. */
export function domainFromXml(x: XNode): Obj {
  const out: Obj = {};
  if (x.attrs.type) out.type = x.attrs.type;
  const mem = child(x, 'memory');
  const bytes = scaledBytes(mem?.text, mem?.attrs.unit, 'KiB');
  if (bytes !== undefined) out.memory = bytes / MiB;
  const vcpu = child(x, 'vcpu')?.text;
  if (vcpu !== undefined) out.vcpus = Number(vcpu);
  out.boot = kids(child(x, 'os'), 'boot').map((b) => b.attrs.dev);
  const devices = child(x, 'devices');
  const disks: Obj = {};
  for (const d of kids(devices, 'disk')) {
    const dev = child(d, 'target')?.attrs.dev;
    if (dev) disks[dev] = diskFromXml(d);
  }
  out.disks = disks;
  out.interfaces = kids(devices, 'interface').map(ifaceFromXml);
  out.graphics = graphicsFromXml(child(devices, 'graphics'));
  out.serial = kids(devices, 'serial').some((s) => s.attrs.type === 'pty') ? 'pty' : 'none';
  return out;
}

export function buildDisk(dev: string, spec: Obj): XNode {
  const device = (spec.device as string) ?? 'disk';
  let type = 'file';
  let source: XNode | undefined;
  if (spec.pool !== undefined || spec.volume !== undefined) {
    type = 'volume';
    source = el('source', { pool: spec.pool as string, volume: spec.volume as string });
  } else if (spec.block !== undefined) {
    type = 'block';
    source = el('source', { dev: spec.block as string });
  } else if (spec.file !== undefined) source = el('source', { file: spec.file as string });
  const format = (spec.format as string | undefined) ?? (device === 'cdrom' ? 'raw' : undefined);
  const bus = (spec.bus as string | undefined) ?? defaultBus(dev);
  return el('disk', { type, device }, [
    el('driver', { name: 'qemu', type: format }),
    source,
    el('target', { dev, bus }),
    spec.readonly === true || (device === 'cdrom' && spec.readonly !== false) ? el('readonly') : undefined,
  ]);
}

function defaultBus(dev: string): string | undefined {
  if (dev.startsWith('vd')) return 'virtio';
  if (dev.startsWith('sd')) return 'sata';
  if (dev.startsWith('hd')) return 'ide';
  return undefined;
}

export function buildIface(spec: Obj): XNode {
  let type: string;
  let source: XNode | undefined;
  let vp: XNode | undefined;
  if (spec.network !== undefined) {
    type = 'network';
    source = el('source', { network: spec.network as string });
  } else if (spec.ovs_bridge !== undefined) {
    type = 'bridge';
    source = el('source', { bridge: spec.ovs_bridge as string });
    vp = el('virtualport', { type: 'openvswitch' });
  } else if (spec.bridge !== undefined) {
    type = 'bridge';
    source = el('source', { bridge: spec.bridge as string });
  } else type = 'user';
  return el('interface', { type }, [
    spec.mac ? el('mac', { address: spec.mac as string }) : undefined,
    source,
    vp,
    spec.vlan !== undefined ? el('vlan', {}, [el('tag', { id: spec.vlan as number })]) : undefined,
    el('model', { type: (spec.model as string) ?? 'virtio' }),
  ]);
}

export function buildGraphics(spec: Obj): XNode | undefined {
  if (spec.type === 'none') return undefined;
  const auto = spec.port === undefined || spec.port === 'auto';
  return el(
    'graphics',
    {
      type: spec.type as string,
      port: auto ? -1 : (spec.port as number),
      autoport: auto ? 'yes' : 'no',
      listen: spec.listen as string | undefined,
    },
    spec.listen ? [el('listen', { type: 'address', address: spec.listen as string })] : [],
  );
}

/** A new domain definition from a spec. */
export function buildDomain(name: string, spec: Obj, virtType: string): XNode {
  const x = el('domain', { type: (spec.type as string) ?? virtType }, [
    el('name', {}, [], name),
    el('memory', { unit: 'MiB' }, [], (spec.memory as number) ?? 128),
    el('currentMemory', { unit: 'MiB' }, [], (spec.memory as number) ?? 128),
    el('vcpu', {}, [], (spec.vcpus as number) ?? 1),
    el('os', {}, [
      el('type', {}, [], 'hvm'),
      ...((spec.boot as string[] | undefined) ?? ['hd']).map((d) => el('boot', { dev: d })),
    ]),
    el('features', {}, [el('acpi'), el('apic')]),
    el('on_poweroff', {}, [], 'destroy'),
    el('on_reboot', {}, [], 'restart'),
    el('on_crash', {}, [], 'destroy'),
    el('devices'),
  ]);
  return patchDomain(x, spec, {});
}

/**
 * Apply the spec fields onto a domain definition (in place). `cur` is the spec read from the
 * same definition (used to keep what the document does not name, e.g. generated MACs).
 */
export function patchDomain(x: XNode, spec: Obj, cur: Obj): XNode {
  if (spec.type !== undefined) x.attrs.type = spec.type as string;
  if (spec.memory !== undefined) {
    setChild(x, 'memory', el('memory', { unit: 'MiB' }, [], spec.memory as number));
    setChild(x, 'currentMemory', el('currentMemory', { unit: 'MiB' }, [], spec.memory as number));
  }
  if (spec.vcpus !== undefined) {
    const v = ensureChild(x, 'vcpu');
    v.text = String(spec.vcpus);
  }
  if (Array.isArray(spec.boot)) {
    const os = ensureChild(x, 'os');
    const i = os.children.findIndex((c) => c.tag === 'boot');
    const rest = os.children.filter((c) => c.tag !== 'boot');
    const boots = (spec.boot as string[]).map((d) => el('boot', { dev: d }));
    const at = i >= 0 ? i : rest.length;
    os.children = [...rest.slice(0, at), ...boots, ...rest.slice(at)];
  }
  const devices = ensureChild(x, 'devices');
  const curDisks = (isObj(cur.disks) ? cur.disks : {}) as Record<string, Obj>;
  if (isObj(spec.disks)) {
    for (const [dev, d] of Object.entries(spec.disks).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const idx = devices.children.findIndex((c) => c.tag === 'disk' && child(c, 'target')?.attrs.dev === dev);
      if (isObj(d) && d.state === 'absent') {
        if (idx >= 0) devices.children.splice(idx, 1);
        continue;
      }
      const merged = mergeSource({ ...(curDisks[dev] ?? {}) }, d as Obj, DISK_SOURCES, [['pool', 'volume']]);
      const node = buildDisk(dev, merged);
      if (idx >= 0) {
        // keep what the spec cannot say (cache mode, boot order, address) where the disk stays the same kind
        const old = devices.children[idx];
        for (const c of old.children)
          if (!['driver', 'source', 'target', 'readonly'].includes(c.tag)) node.children.push(c);
        const drv = child(old, 'driver');
        if (drv) Object.assign(child(node, 'driver')!.attrs, { ...drv.attrs, ...child(node, 'driver')!.attrs });
        devices.children[idx] = node;
      } else insertDevice(devices, node);
    }
  }
  if (Array.isArray(spec.interfaces)) {
    const curIfs = (Array.isArray(cur.interfaces) ? cur.interfaces : []) as Obj[];
    const old = kids(devices, 'interface');
    const nodes = (spec.interfaces as Obj[]).map((want, i) => {
      const merged = mergeSource({ ...(curIfs[i] ?? {}) }, want, IFACE_KINDS, []);
      // a changed attachment gets a fresh MAC unless the document names one
      if (curIfs[i] && !sameAttachment(curIfs[i], merged) && want.mac === undefined) delete merged.mac;
      // VLAN tags work on Open vSwitch ports only
      if (merged.ovs_bridge === undefined && want.vlan === undefined) delete merged.vlan;
      const n = buildIface(merged);
      const o = old[i];
      if (o)
        for (const c of o.children)
          if (['boot', 'driver', 'mtu', 'link', 'filterref'].includes(c.tag)) n.children.push(c);
      return n;
    });
    const first = devices.children.findIndex((c) => c.tag === 'interface');
    devices.children = devices.children.filter((c) => c.tag !== 'interface');
    if (first >= 0) devices.children.splice(first, 0, ...nodes);
    else for (const n of nodes) insertDevice(devices, n);
  }
  if (isObj(spec.graphics)) {
    const merged = { ...(isObj(cur.graphics) ? cur.graphics : {}), ...spec.graphics };
    if (
      spec.graphics.type !== undefined &&
      isObj(cur.graphics) &&
      cur.graphics.type !== spec.graphics.type &&
      spec.graphics.port === undefined
    )
      merged.port = 'auto';
    const g = buildGraphics(merged);
    const all = kids(devices, 'graphics');
    if (!g) devices.children = devices.children.filter((c) => c.tag !== 'graphics');
    else if (all.length) devices.children[devices.children.indexOf(all[0])] = g;
    else insertDevice(devices, g);
  }
  if (spec.serial !== undefined) {
    devices.children = devices.children.filter((c) => !(c.tag === 'serial' || c.tag === 'console'));
    if (spec.serial === 'pty') {
      insertDevice(devices, el('serial', { type: 'pty' }));
      insertDevice(devices, el('console', { type: 'pty' }));
    }
  }
  return x;
}

function sameAttachment(a: Obj, b: Obj): boolean {
  return IFACE_KINDS.every((k) => a[k] === b[k]);
}

/** Merge `want` into `base`; when want names one of the exclusive source keys, the others go. */
function mergeSource(base: Obj, want: Obj, exclusive: readonly string[], together: string[][]): Obj {
  const named = exclusive.filter((k) => want[k] !== undefined);
  if (named.length) {
    const keep = new Set(named);
    for (const g of together) if (g.some((k) => keep.has(k))) g.forEach((k) => keep.add(k));
    for (const k of exclusive) if (!keep.has(k)) delete base[k];
  }
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(want)) if (k !== 'state') out[k] = v;
  return out;
}

/** libvirt's device order: disks, controllers, …, interfaces, …, serial, console, …, graphics. */
const ORDER = [
  'emulator',
  'disk',
  'controller',
  'filesystem',
  'interface',
  'serial',
  'console',
  'channel',
  'input',
  'graphics',
  'sound',
  'audio',
  'video',
  'memballoon',
];

function insertDevice(devices: XNode, n: XNode): void {
  const rank = (t: string) => {
    const i = ORDER.indexOf(t);
    return i < 0 ? ORDER.length : i;
  };
  const r = rank(n.tag);
  const at = devices.children.findIndex((c) => rank(c.tag) > r);
  if (at < 0) devices.children.push(n);
  else devices.children.splice(at, 0, n);
}

/* ----------------------------------------------------------------- networks */

export function prefixOf(netmask: string): number {
  return netmask.split('.').reduce((n, o) => n + (Number(o) >>> 0).toString(2).replace(/0/g, '').length, 0);
}

export function networkFromXml(x: XNode): Obj {
  const out: Obj = {};
  const fwd = child(x, 'forward');
  out.forward = fwd?.attrs.mode ?? (fwd ? 'nat' : 'isolated');
  const br = child(x, 'bridge')?.attrs.name;
  if (br) out.bridge = br;
  out.ovs = child(x, 'virtualport')?.attrs.type === 'openvswitch';
  const ip = kids(x, 'ip').find((i) => (i.attrs.family ?? 'ipv4') === 'ipv4');
  if (ip) {
    const o: Obj = { address: ip.attrs.address };
    if (ip.attrs.prefix !== undefined) o.prefix = Number(ip.attrs.prefix);
    else if (ip.attrs.netmask) o.prefix = prefixOf(ip.attrs.netmask);
    const range = path(ip, 'dhcp', 'range');
    if (range) o.dhcp = { start: range.attrs.start, end: range.attrs.end };
    out.ip = o;
  }
  return out;
}

const NET_OWNED = ['forward', 'bridge', 'virtualport', 'ip'];

/** A network definition: `live` (kept: uuid, mac, dns, …) patched with the spec. */
export function buildNetwork(name: string, spec: Obj, live?: XNode): XNode {
  const cur = live ? networkFromXml(live) : {};
  const s: Obj = { ...cur, ...spec };
  if (isObj(spec.ip) && isObj(cur.ip)) s.ip = { ...cur.ip, ...spec.ip };
  const fwdMode = (s.forward as string | undefined) ?? 'nat';
  const liveBridge = live ? child(live, 'bridge') : undefined;
  const bridgeAttrs: Record<string, string | undefined> =
    fwdMode === 'bridge'
      ? { name: s.bridge as string }
      : { ...(liveBridge?.attrs ?? { stp: 'on', delay: '0' }), name: s.bridge as string | undefined };
  const ip = isObj(s.ip) && fwdMode !== 'bridge' ? s.ip : undefined;
  const owned: XNode[] = [
    fwdMode === 'isolated' ? undefined : el('forward', { mode: fwdMode }),
    s.bridge !== undefined || fwdMode !== 'bridge' ? el('bridge', bridgeAttrs) : undefined,
    s.ovs === true ? el('virtualport', { type: 'openvswitch' }) : undefined,
    ip
      ? el(
          'ip',
          { address: ip.address as string, prefix: ip.prefix as number },
          isObj(ip.dhcp)
            ? [
                el('dhcp', {}, [
                  el('range', { start: (ip.dhcp as Obj).start as string, end: (ip.dhcp as Obj).end as string }),
                ]),
              ]
            : [],
        )
      : undefined,
  ].filter((n): n is XNode => !!n);
  if (!live) return el('network', {}, [el('name', {}, [], name), ...owned]);
  const x: XNode = {
    ...live,
    children: live.children.filter(
      (c) => !NET_OWNED.includes(c.tag) || (c.tag === 'ip' && (c.attrs.family ?? 'ipv4') !== 'ipv4'),
    ),
  };
  // forward bridge networks cannot carry a mac or ip of their own
  if (fwdMode === 'bridge')
    x.children = x.children.filter((c) => c.tag !== 'mac' && c.tag !== 'ip' && c.tag !== 'dns' && c.tag !== 'domain');
  const at = x.children.findIndex((c) => c.tag === 'uuid');
  x.children.splice(at >= 0 ? at + 1 : 1, 0, ...owned);
  return x;
}

/* ----------------------------------------------------------- pools, volumes */

export function poolFromXml(x: XNode): Obj {
  return { type: x.attrs.type, path: path(x, 'target', 'path')?.text };
}

export function buildPool(name: string, spec: Obj, live?: XNode): XNode {
  const type = (spec.type as string | undefined) ?? live?.attrs.type ?? 'dir';
  if (!live)
    return el('pool', { type }, [
      el('name', {}, [], name),
      el('target', {}, [el('path', {}, [], spec.path as string)]),
    ]);
  const x: XNode = structuredClone(live);
  x.attrs.type = type;
  if (spec.path !== undefined) {
    const t = ensureChild(x, 'target');
    ensureChild(t, 'path').text = spec.path as string;
  }
  return x;
}

export function volumeFromXml(x: XNode): Obj {
  const cap = child(x, 'capacity');
  const out: Obj = {};
  const b = scaledBytes(cap?.text, cap?.attrs.unit, 'bytes');
  if (b !== undefined) out.capacity = b;
  const f = path(x, 'target', 'format')?.attrs.type;
  if (f) out.format = f;
  return out;
}
