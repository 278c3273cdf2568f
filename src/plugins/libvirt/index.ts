/**
 * libvirt: networks, storage pools (dir) with volumes, and domains (spec or raw XML) through
 * virsh. Reads: ONE virsh process per read (a stdin batch of list/dumpxml commands for what
 * the document names); show() uses three. Apply: one virsh process per step.
 */
import { sectionSpec } from '../../core/schema-file.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApplyContext, Disposable, DoctorCheck, Edge, NormalizeContext, Obj, Plugin, ReadContext, Settings, WatchContext } from '../../core/plugin.js';
import { applyEach } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { spawnLines } from '../../exec.js';
import { batch, names, SAFE_NAME, uri, virsh, virshMutate } from './virsh.js';
import { child, el, parseXml, projectXml, setChild, toXml, type XNode } from './xml.js';
import { buildDomain, buildNetwork, buildPool, domainFromXml, networkFromXml, patchDomain, poolFromXml, prefixOf, volumeFromXml } from './model.js';
import { planLibvirt, fmtBytes, type LibvirtChangeData, type Step } from './plan.js';

export interface LibvirtSection extends Obj {
  prune?: { networks?: boolean; pools?: boolean; domains?: boolean };
  networks?: Record<string, Obj>;
  pools?: Record<string, Obj>;
  domains?: Record<string, Obj>;
}

const MiB = 1024 * 1024;

/* ------------------------------------------------------------- normalize */

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

function normalizeSection(section: unknown): unknown {
  if (!isObj(section)) return section;
  const out: Obj = { ...section };
  if (isObj(out.domains)) {
    const d: Obj = {};
    for (const [n, spec] of Object.entries(out.domains)) {
      if (!isObj(spec)) {
        d[n] = spec;
        continue;
      }
      const s: Obj = { ...spec };
      if (s.memory !== undefined) s.memory = parseSize(s.memory, MiB);
      if (typeof s.xml === 'string') s.xml = canonicalDocXml(s.xml);
      if (Array.isArray(s.interfaces)) s.interfaces = s.interfaces.map((i) => (isObj(i) && typeof i.mac === 'string' ? { ...i, mac: i.mac.toLowerCase() } : i));
      d[n] = s;
    }
    out.domains = d;
  }
  if (isObj(out.networks)) {
    const nets: Obj = {};
    for (const [n, spec] of Object.entries(out.networks)) {
      if (isObj(spec) && isObj(spec.ip) && typeof spec.ip.netmask === 'string' && spec.ip.prefix === undefined && /^(\d+\.){3}\d+$/.test(spec.ip.netmask)) {
        const { netmask, ...ip } = spec.ip;
        nets[n] = { ...spec, ip: { ...ip, prefix: prefixOf(netmask as string) } };
      } else nets[n] = spec;
    }
    out.networks = nets;
  }
  if (isObj(out.pools)) {
    const pools: Obj = {};
    for (const [n, spec] of Object.entries(out.pools)) {
      if (isObj(spec) && isObj(spec.volumes)) {
        const vols: Obj = {};
        for (const [v, vs] of Object.entries(spec.volumes)) vols[v] = isObj(vs) && vs.capacity !== undefined ? { ...vs, capacity: parseSize(vs.capacity, 1) } : vs;
        pools[n] = { ...spec, volumes: vols };
      } else pools[n] = spec;
    }
    out.pools = pools;
  }
  return out;
}

/* ------------------------------------------------------------------- read */

interface Lists {
  domains: string[];
  running: Set<string>;
  domAuto: Set<string>;
  networks: string[];
  netActive: Set<string>;
  netAuto: Set<string>;
  pools: string[];
  poolActive: Set<string>;
  poolAuto: Set<string>;
}

const LIST_CMDS: string[][] = [
  ['list', '--all', '--name'],
  ['list', '--name', '--state-running'],
  ['list', '--name', '--state-paused'],
  ['list', '--all', '--name', '--autostart'],
  ['net-list', '--all', '--name'],
  ['net-list', '--name'],
  ['net-list', '--all', '--name', '--autostart'],
  ['pool-list', '--all', '--name'],
  ['pool-list', '--name'],
  ['pool-list', '--all', '--name', '--autostart'],
];

function lists(out: string[]): Lists {
  const [d, r, p, da, n, na, nau, po, pa, pau] = out.map(names);
  return {
    domains: d, running: new Set([...r, ...p]), domAuto: new Set(da),
    networks: n, netActive: new Set(na), netAuto: new Set(nau),
    pools: po, poolActive: new Set(pa), poolAuto: new Set(pau),
  };
}

type Dump = { kind: 'dom' | 'net' | 'pool'; name: string } | { kind: 'vol'; pool: string; name: string } | { kind: 'vols'; pool: string };

function dumpCmd(d: Dump): string[] {
  switch (d.kind) {
    case 'dom': return ['dumpxml', '--inactive', d.name];
    case 'net': return ['net-dumpxml', '--inactive', d.name];
    case 'pool': return ['pool-dumpxml', '--inactive', d.name];
    case 'vol': return ['vol-dumpxml', '--pool', d.pool, d.name];
    case 'vols': return ['vol-list', '--pool', d.pool];
  }
}

function safeDump(d: Dump): boolean {
  return [(d as { name?: string }).name, (d as { pool?: string }).pool].every((s) => s === undefined || SAFE_NAME.test(s));
}

/** Run dumps: safe names in one batch (plus `pre` commands), others one argv process each. */
async function dumps(settings: Settings, pre: string[][], list: Dump[]): Promise<{ pre: string[]; out: Map<Dump, string> }> {
  const safe = list.filter(safeDump);
  const res = await batch(settings, [...pre, ...safe.map(dumpCmd)]);
  const out = new Map<Dump, string>();
  safe.forEach((d, i) => out.set(d, res[pre.length + i]));
  for (const d of list.filter((x) => !safeDump(x))) {
    const r = await virsh(settings, dumpCmd(d), { okCodes: [0, 1] });
    out.set(d, r.exitCode === 0 ? r.stdout.trim() : '');
  }
  return { pre: res.slice(0, pre.length), out };
}

function volNames(table: string): string[] {
  // " Name   Path\n------\n vol1   /path/vol1"
  return table.split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0]).filter(Boolean).sort();
}

function parseOrThrow(text: string, what: string): XNode {
  try {
    return parseXml(text);
  } catch (err) {
    throw new OpdError('backend-failed', `could not parse the XML virsh printed for ${what}: ${(err as Error).message}`);
  }
}

function domainState(name: string, l: Lists): Obj {
  return { running: l.running.has(name), autostart: l.domAuto.has(name) };
}

function domainCurrent(xml: XNode, desired: Obj | undefined, name: string, l: Lists): Obj {
  if (isObj(desired) && typeof desired.xml === 'string') {
    let docTree: XNode | undefined;
    try {
      docTree = parseXml(desired.xml);
    } catch (err) {
      throw new OpdError('invalid-document', `libvirt/domains/${name}: xml is not well-formed: ${(err as Error).message}`, { hint: 'fix the domain XML (one <domain> root element)' });
    }
    return { xml: toXml(projectXml(xml, docTree)), ...domainState(name, l), ...(desired.shutdown_timeout !== undefined ? { shutdown_timeout: desired.shutdown_timeout } : {}) };
  }
  const cur = domainFromXml(xml);
  // interfaces are a list: compare each entry on the fields the document names for it
  if (isObj(desired) && Array.isArray(desired.interfaces) && Array.isArray(cur.interfaces)) {
    const want = desired.interfaces as Obj[];
    cur.interfaces = (cur.interfaces as Obj[]).map((c, i) => {
      const w = isObj(want[i]) ? want[i] : {};
      const o: Obj = {};
      for (const k of Object.keys(c)) if (k in w || ['network', 'bridge', 'ovs_bridge', 'user'].includes(k)) o[k] = c[k];
      return o;
    });
  }
  // shutdown_timeout steers opd (how long a graceful shutdown may take), it is not host state
  if (isObj(desired) && desired.shutdown_timeout !== undefined) cur.shutdown_timeout = desired.shutdown_timeout;
  return { ...cur, ...domainState(name, l) };
}

async function readSection(settings: Settings, desired: LibvirtSection, all: boolean): Promise<LibvirtSection> {
  const wantDom = Object.keys(desired.domains ?? {});
  const wantNet = Object.keys(desired.networks ?? {});
  const wantPool = Object.keys(desired.pools ?? {});
  const first: Dump[] = [
    ...wantDom.map((name) => ({ kind: 'dom' as const, name })),
    ...wantNet.map((name) => ({ kind: 'net' as const, name })),
    ...wantPool.map((name) => ({ kind: 'pool' as const, name })),
  ];
  for (const p of wantPool) {
    const spec = desired.pools![p];
    for (const v of Object.keys((isObj(spec?.volumes) ? spec.volumes : {}) as Obj)) first.push({ kind: 'vol', pool: p, name: v });
    if (all || (isObj(spec?.prune) && spec.prune.volumes === true)) first.push({ kind: 'vols', pool: p });
  }
  const r1 = await dumps(settings, LIST_CMDS, first);
  const l = lists(r1.pre);
  const got = new Map<string, string>();
  const key = (d: Dump) => (d.kind === 'vol' ? `vol/${d.pool}/${d.name}` : d.kind === 'vols' ? `vols/${d.pool}` : `${d.kind}/${d.name}`);
  for (const [d, t] of r1.out) got.set(key(d), t);
  // second round (prune / show): what the document does not name
  const second: Dump[] = [];
  const pr = desired.prune ?? {};
  if (all || pr.domains) for (const n of l.domains) if (!got.has(`dom/${n}`)) second.push({ kind: 'dom', name: n });
  if (all || pr.networks) for (const n of l.networks) if (!got.has(`net/${n}`)) second.push({ kind: 'net', name: n });
  if (all || pr.pools) for (const n of l.pools) if (!got.has(`pool/${n}`)) {
    second.push({ kind: 'pool', name: n });
    if (all) second.push({ kind: 'vols', pool: n });
  }
  if (second.length) for (const [d, t] of (await dumps(settings, [], second)).out) got.set(key(d), t);
  const pruneVols = (p: string) => { const sp = desired.pools?.[p]; return isObj(sp?.prune) && sp.prune.volumes === true; };
  if (all || wantPool.some(pruneVols)) {
    // last round (show, pruned volumes): every volume of those pools
    const third: Dump[] = [];
    for (const p of l.pools) if (all || pruneVols(p)) for (const v of volNames(got.get(`vols/${p}`) ?? '')) if (!got.has(`vol/${p}/${v}`)) third.push({ kind: 'vol', pool: p, name: v });
    if (third.length) for (const [d, t] of (await dumps(settings, [], third)).out) got.set(key(d), t);
  }

  const domains: Record<string, Obj> = {};
  const domSet = new Set(l.domains);
  for (const n of [...new Set([...wantDom, ...(all || pr.domains ? l.domains : [])])].sort()) {
    const t = got.get(`dom/${n}`);
    if (!domSet.has(n) || !t) continue;
    domains[n] = domainCurrent(parseOrThrow(t, `domain ${n}`), all ? undefined : desired.domains?.[n], n, l);
  }
  const networks: Record<string, Obj> = {};
  const netSet = new Set(l.networks);
  for (const n of [...new Set([...wantNet, ...(all || pr.networks ? l.networks : [])])].sort()) {
    const t = got.get(`net/${n}`);
    if (!netSet.has(n) || !t) continue;
    networks[n] = { ...networkFromXml(parseOrThrow(t, `network ${n}`)), active: l.netActive.has(n), autostart: l.netAuto.has(n) };
  }
  const pools: Record<string, Obj> = {};
  const poolSet = new Set(l.pools);
  for (const n of [...new Set([...wantPool, ...(all || pr.pools ? l.pools : [])])].sort()) {
    const t = got.get(`pool/${n}`);
    if (!poolSet.has(n) || !t) continue;
    const volumes: Obj = {};
    const spec = desired.pools?.[n];
    const vnames = new Set([...Object.keys((isObj(spec?.volumes) ? spec!.volumes : {}) as Obj), ...volNames(got.get(`vols/${n}`) ?? '')]);
    for (const v of [...vnames].sort()) {
      const vt = got.get(`vol/${n}/${v}`);
      if (vt) volumes[v] = volumeFromXml(parseOrThrow(vt, `volume ${n}/${v}`));
    }
    pools[n] = { ...poolFromXml(parseOrThrow(t, `pool ${n}`)), active: l.poolActive.has(n), autostart: l.poolAuto.has(n), volumes };
  }
  return { networks, pools, domains };
}

/* ------------------------------------------------------------------ apply */

let virtTypeCache: Map<string, string> | undefined;

/** kvm when the hypervisor offers it (domcapabilities answers for kvm), else qemu. */
async function virtType(settings: Settings): Promise<string> {
  virtTypeCache ??= new Map();
  const u = uri(settings);
  const hit = virtTypeCache.get(u);
  if (hit) return hit;
  const r = await virsh(settings, ['domcapabilities', '--virttype', 'kvm'], { okCodes: [0, 1] });
  const t = r.exitCode === 0 ? 'kvm' : 'qemu';
  virtTypeCache.set(u, t);
  return t;
}

async function dumpLive(settings: Settings, cmd: string[]): Promise<XNode | undefined> {
  const r = await virsh(settings, cmd, { okCodes: [0, 1] });
  if (r.exitCode !== 0) return undefined;
  return parseOrThrow(r.stdout, cmd.slice(-1)[0]);
}

/** Define from a private temp file (virsh reads definitions from files only). */
async function define(ctx: ApplyContext, cmd: string, x: XNode): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'opd-libvirt-'));
  try {
    const f = join(dir, 'definition.xml');
    writeFileSync(f, toXml(x), { mode: 0o600 });
    await virshMutate(ctx, [cmd, f]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function domState(settings: Settings, name: string): Promise<string> {
  return (await virsh(settings, ['domstate', name])).stdout.trim();
}

/**
 * Graceful shutdown, bounded: subscribe to the domain's lifecycle events, ask the guest to
 * shut down, await the "Stopped" event (or the timeout: the event process exits), then
 * destroy if it still runs. No polling: we await process exits.
 */
async function stopDomain(ctx: ApplyContext, name: string, timeout: number): Promise<void> {
  const settings = ctx.settings;
  if ((await domState(settings, name)) === 'shut off') return;
  if (timeout > 0) {
    const deadline = Date.now() + timeout * 1000;
    const wait = (secs: number) => virsh(settings, ['event', '--domain', name, '--event', 'lifecycle', '--timeout', String(secs)], { okCodes: [0, 1], timeout: (secs + 15) * 1000 });
    let ev = wait(timeout);
    await virshMutate(ctx, ['shutdown', name], { okCodes: [0, 1] });
    for (let i = 0; i < 3; i++) {
      const r = await ev;
      if (/Stopped|Shutdown Finished/.test(r.stdout) && (await domState(settings, name)) === 'shut off') return;
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0 || !/event 'lifecycle'/.test(r.stdout)) break;
      ev = wait(left);
    }
  }
  if ((await domState(settings, name)) !== 'shut off') await virshMutate(ctx, ['destroy', name], { okCodes: [0, 1] });
  const s = await domState(settings, name);
  if (s !== 'shut off') throw new OpdError('backend-busy', `domain ${name} is still ${s} after destroy`, { hint: 'look at /var/log/libvirt/qemu/' + name + '.log' });
}

async function runStep(ctx: ApplyContext, s: Step): Promise<void> {
  const st = ctx.settings;
  switch (s.op) {
    case 'dom-define': {
      const live = await dumpLive(st, ['dumpxml', '--inactive', s.name]);
      let x: XNode;
      if (s.xml !== undefined) {
        x = parseXml(s.xml);
        if (x.tag !== 'domain') throw new OpdError('invalid-document', `libvirt/domains/${s.name}: xml has root <${x.tag}>, expected <domain>`);
        setChild(x, 'name', el('name', {}, [], s.name));
        x.children.sort((a, b) => (a.tag === 'name' ? -1 : b.tag === 'name' ? 1 : 0));
        const uuid = live ? child(live, 'uuid')?.text : undefined;
        if (uuid) {
          const i = x.children.findIndex((c) => c.tag === 'uuid');
          if (i >= 0) x.children[i] = el('uuid', {}, [], uuid);
          else x.children.splice(1, 0, el('uuid', {}, [], uuid));
        }
        if (!x.attrs.type) x.attrs.type = await virtType(st);
      } else if (live) x = patchDomain(live, s.spec ?? {}, domainFromXml(live));
      else x = buildDomain(s.name, s.spec ?? {}, await virtType(st));
      await define(ctx, 'define', x);
      return;
    }
    case 'dom-start':
      await virshMutate(ctx, ['start', s.name]);
      return;
    case 'dom-stop':
      await stopDomain(ctx, s.name, s.timeout);
      return;
    case 'dom-autostart':
      await virshMutate(ctx, ['autostart', ...(s.on ? [] : ['--disable']), s.name]);
      return;
    case 'dom-undefine':
      await virshMutate(ctx, ['undefine', '--managed-save', '--snapshots-metadata', '--nvram', s.name]);
      return;
    case 'net-define': {
      const live = await dumpLive(st, ['net-dumpxml', '--inactive', s.name]);
      await define(ctx, 'net-define', buildNetwork(s.name, s.spec, live));
      return;
    }
    case 'net-start':
      await virshMutate(ctx, ['net-start', s.name]);
      return;
    case 'net-stop':
      await virshMutate(ctx, ['net-destroy', s.name]);
      return;
    case 'net-autostart':
      await virshMutate(ctx, ['net-autostart', ...(s.on ? [] : ['--disable']), s.name]);
      return;
    case 'net-undefine':
      await virshMutate(ctx, ['net-undefine', s.name]);
      return;
    case 'pool-define': {
      const live = await dumpLive(st, ['pool-dumpxml', '--inactive', s.name]);
      await define(ctx, 'pool-define', buildPool(s.name, s.spec, live));
      return;
    }
    case 'pool-build':
      await virshMutate(ctx, ['pool-build', s.name]);
      return;
    case 'pool-start':
      await virshMutate(ctx, ['pool-start', s.name]);
      return;
    case 'pool-stop':
      await virshMutate(ctx, ['pool-destroy', s.name]);
      return;
    case 'pool-autostart':
      await virshMutate(ctx, ['pool-autostart', ...(s.on ? [] : ['--disable']), s.name]);
      return;
    case 'pool-undefine':
      await virshMutate(ctx, ['pool-undefine', s.name]);
      return;
    case 'vol-create':
      await virshMutate(ctx, ['vol-create-as', '--pool', s.pool, '--name', s.name, '--capacity', String(s.capacity), '--format', s.format]);
      return;
    case 'vol-resize':
      await virshMutate(ctx, ['vol-resize', '--pool', s.pool, '--vol', s.name, '--capacity', String(s.capacity), ...(s.shrink ? ['--shrink'] : [])]);
      return;
    case 'vol-delete':
      await virshMutate(ctx, ['vol-delete', '--pool', s.pool, '--vol', s.name]);
      return;
  }
}

/* ----------------------------------------------------------------- plugin */

const plugin: Plugin<LibvirtSection, LibvirtChangeData> = {
  ...sectionSpec('libvirt', ['networks', 'pools', 'domains']),

  normalize(section: unknown, _ctx: NormalizeContext) {
    return normalizeSection(section);
  },

  async read(ctx: ReadContext, desired: LibvirtSection): Promise<LibvirtSection> {
    return readSection(ctx.settings, desired ?? {}, false);
  },

  plan: planLibvirt,

  apply: applyEach(async (ctx, c) => {
    for (const s of c.data!.steps) await runStep(ctx, s);
  }),

  edges(desired: LibvirtSection): Edge[] {
    const edges: Edge[] = [];
    for (const [n, spec] of Object.entries(desired.domains ?? {})) {
      if (!isObj(spec)) continue;
      const from = `libvirt/domains/${n}`;
      for (const i of (Array.isArray(spec.interfaces) ? spec.interfaces : []) as Obj[]) {
        if (typeof i.network === 'string') edges.push({ from, to: `libvirt/networks/${i.network}`, kind: 'network' });
        if (typeof i.ovs_bridge === 'string') edges.push({ from, to: `ovs/bridges/${i.ovs_bridge}`, kind: 'ovs-bridge' });
      }
      for (const d of Object.values((isObj(spec.disks) ? spec.disks : {}) as Record<string, Obj>))
        if (isObj(d) && typeof d.pool === 'string') edges.push({ from, to: `libvirt/pools/${d.pool}`, kind: 'storage' });
      if (typeof spec.xml === 'string') {
        for (const m of spec.xml.matchAll(/<source\s[^>]*network='([^']+)'/g)) edges.push({ from, to: `libvirt/networks/${m[1]}`, kind: 'network' });
        for (const m of spec.xml.matchAll(/<source\s[^>]*pool='([^']+)'/g)) edges.push({ from, to: `libvirt/pools/${m[1]}`, kind: 'storage' });
      }
    }
    for (const [n, spec] of Object.entries(desired.networks ?? {}))
      if (isObj(spec) && spec.ovs === true && typeof spec.bridge === 'string') edges.push({ from: `libvirt/networks/${n}`, to: `ovs/bridges/${spec.bridge}`, kind: 'ovs-bridge' });
    return edges;
  },

  async show(ctx: ReadContext): Promise<LibvirtSection> {
    const s = await readSection(ctx.settings, {}, true);
    const domains: Record<string, Obj> = {};
    for (const [n, d] of Object.entries(s.domains ?? {})) {
      const o: Obj = { ...d };
      if (Array.isArray(o.boot) && !o.boot.length) delete o.boot;
      if (isObj(o.disks)) for (const [k, disk] of Object.entries(o.disks)) if (isObj(disk) && disk.device === 'cdrom' && disk.file === undefined) delete (o.disks as Obj)[k];
      domains[n] = o;
    }
    const pools: Record<string, Obj> = {};
    for (const [n, p] of Object.entries(s.pools ?? {})) {
      const vols: Obj = {};
      for (const [v, vs] of Object.entries((p.volumes ?? {}) as Record<string, Obj>)) vols[v] = { ...vs, capacity: showSize(vs.capacity as number) };
      pools[n] = p.type === 'dir' ? { ...p, volumes: vols } : { ...p, volumes: vols };
    }
    return { networks: s.networks, pools, domains };
  },

  async watch(ctx: WatchContext, onDrift: (address?: string) => void): Promise<Disposable> {
    const u = uri(ctx.settings);
    const streams = [
      spawnLines('virsh', ['-c', u, 'event', '--all', '--loop'], (line) => {
        const m = /for domain '([^']+)'/.exec(line) ?? /for domain ([^:]+):/.exec(line);
        onDrift(m ? `libvirt/domains/${m[1]}` : undefined);
      }, ctx.log),
      spawnLines('virsh', ['-c', u, 'net-event', '--event', 'lifecycle', '--loop'], (line) => {
        const m = /for network '?([^':]+)'?:/.exec(line);
        onDrift(m ? `libvirt/networks/${m[1]}` : undefined);
      }, ctx.log),
      spawnLines('virsh', ['-c', u, 'pool-event', '--event', 'lifecycle', '--loop'], (line) => {
        const m = /for storage pool '?([^':]+)'?:/.exec(line);
        onDrift(m ? `libvirt/pools/${m[1]}` : undefined);
      }, ctx.log),
    ];
    return { dispose: async () => void (await Promise.all(streams.map((s) => s.dispose()))) };
  },

  async doctor(ctx: ReadContext): Promise<DoctorCheck[]> {
    const u = uri(ctx.settings);
    try {
      const v = await virsh(ctx.settings, ['version']);
      const t = await virtType(ctx.settings);
      const hv = /Running hypervisor: (.*)/.exec(v.stdout)?.[1] ?? 'unknown hypervisor';
      return [
        { name: 'libvirt: connection', ok: true, detail: `${u}: ${hv}` },
        { name: 'libvirt: kvm', ok: t === 'kvm', detail: t === 'kvm' ? 'KVM acceleration available' : 'no KVM: domains run under TCG emulation (slow)', hint: t === 'kvm' ? undefined : 'check /dev/kvm exists and belongs to group kvm with mode 660' },
      ];
    } catch (err) {
      const e = toOpdError(err);
      return [{ name: 'libvirt: connection', ok: false, detail: e.message, hint: e.hint }];
    }
  },
};

/** Sizes for show: "1G" when exact, else bytes. */
function showSize(n: number): string | number {
  const s = fmtBytes(n);
  return s.endsWith('B') ? n : s;
}

export default plugin;
