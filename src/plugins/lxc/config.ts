/**
 * Pure LXC config-file handling: parse a container's `config`, turn it into the section's
 * shape (memory, cpus, network, autostart, raw keys), and rewrite it for a desired spec while
 * keeping every line opd does not manage (comments, template keys, keys the document does not name).
 */
import type { Obj } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import type { Container, Interface } from './section.gen.js';

export interface ConfLine {
  /** the line as it is in the file */
  raw: string;
  key?: string;
  value?: string;
}

export const KEY_RE = /^lxc\.[a-z0-9_][a-z0-9_.-]*$/;

/** Keys set through dedicated fields (network, autostart, rootfs, memory, cpus), never through `config`. */
export function isManagedKey(key: string): boolean {
  return /^lxc\.(net\.|network\.|start\.auto$|rootfs\.path$|cgroup2?\.(memory\.max|memory\.limit_in_bytes|cpuset\.cpus)$)/.test(
    key,
  );
}

export const MEMORY_KEYS = { v1: 'lxc.cgroup.memory.limit_in_bytes', v2: 'lxc.cgroup2.memory.max' } as const;
export const CPUSET_KEYS = { v1: 'lxc.cgroup.cpuset.cpus', v2: 'lxc.cgroup2.cpuset.cpus' } as const;

function unquote(v: string): string {
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) return v.slice(1, -1);
  return v;
}

/** LXC's own format: `key = value` per line, `#` comments, surrounding quotes stripped. */
export function parseConfig(text: string): ConfLine[] {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.map((raw) => {
    const t = raw.trim();
    if (!t || t.startsWith('#')) return { raw };
    const i = t.indexOf('=');
    if (i < 0) return { raw };
    return { raw, key: t.slice(0, i).trim(), value: unquote(t.slice(i + 1).trim()) };
  });
}

export function serializeConfig(lines: ConfLine[]): string {
  return lines.map((l) => l.raw).join('\n') + '\n';
}

function values(lines: ConfLine[], key: string): string[] {
  return lines.filter((l) => l.key === key).map((l) => l.value!);
}

function last(lines: ConfLine[], key: string): string | undefined {
  const v = values(lines, key);
  return v.length ? v[v.length - 1] : undefined;
}

const UNITS: [string, number][] = [
  ['G', 1024 ** 3],
  ['M', 1024 ** 2],
  ['K', 1024],
];

/** Bytes of a memory value (`64M`, `67108864`, `64m`); undefined when it is not a limit. */
export function memoryBytes(v: string): number | undefined {
  const m = /^([0-9]+)\s*([kKmMgG])?$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ? UNITS.find(([u]) => u === m[2].toUpperCase())![1] : 1;
  return n * unit;
}

/** The one spelling opd uses: the largest unit that divides exactly (67108864 → 64M). */
export function canonicalMemory(v: string): string {
  const b = memoryBytes(v);
  if (b === undefined || b <= 0) return v;
  for (const [u, f] of UNITS) if (b % f === 0) return `${b / f}${u}`;
  return String(b);
}

export interface Marker {
  /** how opd created the container */
  template: string;
  /** opd created the rootfs (busybox / download) and may delete it with the container */
  rootfs_owned: boolean;
  /** the rootfs opd created (absolute path) */
  rootfs?: string;
  /** template archive: the root filesystem archive it was unpacked from */
  archive?: string;
}

/** An interface as read: a config may name any LXC network type. */
export type InterfaceState = Omit<Interface, 'type'> & { type: string };
/** A container as read (the generated Container of schema/lxc.schema.json): any network type, repeated config keys as lists. */
export type ContainerState = Omit<Container, 'network' | 'config'> & {
  network?: InterfaceState[];
  config?: Record<string, string | string[]>;
  /** opd created its rootfs (a delete removes it) */
  rootfs_owned?: boolean;
};

export interface ReadFacts {
  spec: ContainerState;
  /** the rootfs directory (lxc.rootfs.path without `dir:`) */
  rootfs?: string;
  /** opd created this rootfs and it lies where opd put it */
  rootfsOwned: boolean;
}

/** Template and download parameters from the comments lxc-create writes. */
function templateFromComments(lines: ConfLine[]): { template?: string; params: string[] } {
  let template: string | undefined;
  let params: string[] = [];
  for (const l of lines) {
    const t = l.raw.trim();
    let m = /^#\s*Template used to create this container:\s*(\S+)/.exec(t);
    if (m) template = m[1].split('/').pop()!.replace(/^lxc-/, '');
    m = /^#\s*Parameters passed to the template:\s*(.*)$/.exec(t);
    if (m) params = m[1].trim().split(/\s+/).filter(Boolean);
  }
  return { template, params };
}

function downloadParams(params: string[]): Obj {
  const out: Obj = {};
  const names: Record<string, string> = {
    '-d': 'dist',
    '--dist': 'dist',
    '-r': 'release',
    '--release': 'release',
    '-a': 'arch',
    '--arch': 'arch',
  };
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    const eq = p.indexOf('=');
    if (p.startsWith('--') && eq > 0 && names[p.slice(0, eq)]) out[names[p.slice(0, eq)]] = p.slice(eq + 1);
    else if (names[p] && i + 1 < params.length) out[names[p]] = params[++i];
  }
  return out;
}

export function rootfsPath(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  return v.startsWith('dir:') ? v.slice(4) : v;
}

/** The network of a config: lxc.net.N.* grouped by N, in order. */
export function networkFromConfig(lines: ConfLine[]): InterfaceState[] {
  const byIndex = new Map<number, Map<string, string[]>>();
  for (const l of lines) {
    const m = l.key ? /^lxc\.net\.([0-9]+)\.(.+)$/.exec(l.key) : null;
    if (!m) continue;
    const i = Number(m[1]);
    const sub = byIndex.get(i) ?? new Map<string, string[]>();
    sub.set(m[2], [...(sub.get(m[2]) ?? []), l.value!]);
    byIndex.set(i, sub);
  }
  // no lxc.net keys at all: LXC shares the host's network namespace (type none)
  if (!byIndex.size) return [{ type: 'none' }];
  const out: InterfaceState[] = [];
  for (const i of [...byIndex.keys()].sort((a, b) => a - b)) {
    const s = byIndex.get(i)!;
    const one = (k: string) => {
      const v = s.get(k);
      return v && v.length ? v[v.length - 1] : undefined;
    };
    const itf: InterfaceState = { type: one('type') ?? 'empty' };
    const link = one('link');
    if (link) itf.link = link;
    const pair = one('veth.pair');
    if (pair) itf.name = pair;
    const gname = one('name');
    if (gname) itf.guest_name = gname;
    const hw = one('hwaddr');
    if (hw) itf.hwaddr = hw.toLowerCase();
    const ip = s.get('ipv4.address')?.[0];
    if (ip) itf.ipv4 = ip;
    const gw = one('ipv4.gateway');
    if (gw) itf.ipv4_gateway = gw;
    const mtu = one('mtu');
    if (mtu && /^[0-9]+$/.test(mtu)) itf.mtu = Number(mtu);
    out.push(itf);
  }
  return out;
}

/**
 * A container's state in the section's shape from its config file and opd's marker
 * (everything but `running`, which comes from lxc-ls).
 */
export function specFromConfig(text: string, marker: Marker | undefined, containerDir: string): ReadFacts {
  const lines = parseConfig(text);
  const spec: ContainerState = {};
  const fromComments = templateFromComments(lines);
  const named = marker?.template ?? fromComments.template;
  const template = named === 'busybox' || named === 'download' || named === 'archive' ? named : 'none';
  spec.template = template;
  if (template === 'archive' && marker?.archive) spec.archive = marker.archive;
  if (template === 'download') Object.assign(spec, downloadParams(fromComments.params));
  const rootfs = rootfsPath(last(lines, 'lxc.rootfs.path'));
  if (rootfs !== undefined) spec.rootfs = rootfs;
  const mem = last(lines, MEMORY_KEYS.v2) ?? last(lines, MEMORY_KEYS.v1);
  if (mem !== undefined && memoryBytes(mem) !== undefined && memoryBytes(mem)! > 0) spec.memory = canonicalMemory(mem);
  const cpus = last(lines, CPUSET_KEYS.v2) ?? last(lines, CPUSET_KEYS.v1);
  if (cpus !== undefined && cpus !== '') spec.cpus = cpus;
  spec.network = networkFromConfig(lines);
  spec.autostart = last(lines, 'lxc.start.auto') === '1';
  const config: Record<string, string | string[]> = {};
  const keys = [...new Set(lines.filter((l) => l.key).map((l) => l.key!))].filter(
    (k) => KEY_RE.test(k) && !isManagedKey(k) && !k.includes('..'),
  );
  for (const k of keys.sort()) {
    const v = values(lines, k);
    config[k] = v.length === 1 ? v[0] : v;
  }
  spec.config = config;
  const owned =
    !!marker?.rootfs_owned && rootfs !== undefined && marker.rootfs === rootfs && rootfs === `${containerDir}/rootfs`;
  return { spec, rootfs, rootfsOwned: owned };
}

/** lxc.net.N.* lines of a network list (veth interfaces always come up). */
export function networkLines(network: Obj[]): string[] {
  const list = network.length ? network : [{ type: 'empty' }];
  const out: string[] = [];
  list.forEach((itf, i) => {
    const p = `lxc.net.${i}.`;
    out.push(`${p}type = ${itf.type}`);
    if (itf.link !== undefined) out.push(`${p}link = ${itf.link}`);
    if (itf.type !== 'empty' && itf.type !== 'none') out.push(`${p}flags = up`);
    if (itf.name !== undefined) out.push(`${p}veth.pair = ${itf.name}`);
    if (itf.guest_name !== undefined) out.push(`${p}name = ${itf.guest_name}`);
    if (itf.hwaddr !== undefined) out.push(`${p}hwaddr = ${itf.hwaddr}`);
    if (itf.ipv4 !== undefined) out.push(`${p}ipv4.address = ${itf.ipv4}`);
    if (itf.ipv4_gateway !== undefined) out.push(`${p}ipv4.gateway = ${itf.ipv4_gateway}`);
    if (itf.mtu !== undefined) out.push(`${p}mtu = ${itf.mtu}`);
  });
  return out;
}

function line(key: string, value: string): ConfLine {
  return { raw: `${key} = ${value}`, key, value };
}

/** Replace every line of `match` keys by `repl` (at the place of the first one, else at the end). */
function replaceKeys(lines: ConfLine[], match: (k: string) => boolean, repl: ConfLine[]): ConfLine[] {
  const first = lines.findIndex((l) => l.key !== undefined && match(l.key));
  const kept = lines.filter((l) => !(l.key !== undefined && match(l.key)));
  if (first < 0) return [...kept, ...repl];
  const before = lines.slice(0, first).filter((l) => !(l.key !== undefined && match(l.key))).length;
  return [...kept.slice(0, before), ...repl, ...kept.slice(before)];
}

/**
 * Rewrite a config for the fields `spec` names (memory, cpus, network, autostart, rootfs,
 * config); everything else stays as it is. `cgroup2` picks the key family the host uses.
 */
export function rewriteConfig(text: string, spec: Obj, cgroup2: boolean): string {
  let lines = parseConfig(text);
  const v = cgroup2 ? 'v2' : 'v1';
  if (spec.memory !== undefined) {
    lines = replaceKeys(lines, (k) => k === MEMORY_KEYS.v1 || k === MEMORY_KEYS.v2, [
      line(MEMORY_KEYS[v], String(spec.memory)),
    ]);
  }
  if (spec.cpus !== undefined) {
    lines = replaceKeys(lines, (k) => k === CPUSET_KEYS.v1 || k === CPUSET_KEYS.v2, [
      line(CPUSET_KEYS[v], String(spec.cpus)),
    ]);
  }
  if (spec.autostart !== undefined)
    lines = replaceKeys(lines, (k) => k === 'lxc.start.auto', [line('lxc.start.auto', spec.autostart ? '1' : '0')]);
  if (spec.rootfs !== undefined)
    lines = replaceKeys(lines, (k) => k === 'lxc.rootfs.path', [line('lxc.rootfs.path', `dir:${spec.rootfs}`)]);
  if (Array.isArray(spec.network)) {
    const repl = networkLines(spec.network as Obj[]).map((l) => {
      const i = l.indexOf(' = ');
      return line(l.slice(0, i), l.slice(i + 3));
    });
    lines = replaceKeys(
      lines,
      (k) => k.startsWith('lxc.net.') || k.startsWith('lxc.network.') || k === 'lxc.net',
      repl,
    );
  }
  const config = isObj(spec.config) ? spec.config : {};
  for (const k of Object.keys(config).sort()) {
    const val = config[k];
    const vals = Array.isArray(val) ? val.map(String) : [String(val)];
    lines = replaceKeys(
      lines,
      (x) => x === k,
      vals.map((x) => line(k, x)),
    );
  }
  return serializeConfig(lines);
}

/** The config file passed to lxc-create -f: the keys a container must have from its first moment. */
export function createConfig(spec: Obj): string {
  const out = [
    '# written by opd for lxc-create',
    'lxc.apparmor.profile = unconfined',
    ...networkLines(Array.isArray(spec.network) ? (spec.network as Obj[]) : []),
  ];
  return out.join('\n') + '\n';
}
