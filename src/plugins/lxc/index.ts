/**
 * lxc: LXC system containers through the lxc-* tools and a configurable lxcpath
 * (--lxc-path / OPD_LXC_PATH). Reads: one `lxc-ls --fancy` plus each container's config file.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ApplyContext, Change, ChangeResult, Disposable, DoctorCheck, Edge, NormalizeContext, Obj, Plugin, ReadContext, WatchContext } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { arrayToMap } from '../../core/normalize.js';
import { isObj } from '../../core/diff.js';
import { SCHEMA_DIR } from '../../core/validate.js';
import { run, spawnLines } from '../../exec.js';
import { canonicalMemory } from './config.js';
import { planContainer, type LxcChangeData } from './plan.js';
import { configure, create, destroy, isRunning, lxcEnv, lxcPath, readContainers, start, stop } from './backend.js';

export interface LxcSection extends Obj {
  prune?: { containers?: boolean };
  containers?: Record<string, Obj>;
}

const TEMPLATES = new Set(['busybox', 'download', 'none']);

/** op-dbus `plugins.lxc.containers[]` entry → opd container (keyed by `id`). */
export function fromOpDbus(item: Obj): Obj {
  const out: Obj = { ...item };
  if (typeof out.id === 'number') out.id = String(out.id);
  if (out.id === undefined && typeof out.name === 'string') {
    out.id = out.name;
    delete out.name;
  }
  const config: Obj = isObj(out.config) ? { ...out.config } : {};
  if (typeof out.name === 'string') {
    config['lxc.uts.name'] = out.name;
    delete out.name;
  }
  if ((out.veth !== undefined || out.bridge !== undefined) && out.network === undefined) {
    const itf: Obj = { type: 'veth' };
    if (out.bridge !== undefined) itf.link = out.bridge;
    if (out.veth !== undefined) itf.name = out.veth;
    out.network = [itf];
  }
  delete out.veth;
  delete out.bridge;
  if (isObj(out.properties)) {
    const rest: Obj = { ...out.properties };
    const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : undefined);
    const mem = num(rest.memory);
    if (mem !== undefined && mem > 0) {
      if (out.memory === undefined) out.memory = `${mem}M`;
      delete rest.memory;
    }
    const cores = num(rest.cores);
    if (cores !== undefined && cores > 0) {
      if (out.cpus === undefined) out.cpus = cores === 1 ? '0' : `0-${cores - 1}`;
      delete rest.cores;
    }
    if (typeof rest.onboot === 'boolean') {
      if (out.autostart === undefined) out.autostart = rest.onboot;
      delete rest.onboot;
    }
    if (typeof rest.hostname === 'string') {
      config['lxc.uts.name'] = rest.hostname;
      delete rest.hostname;
    }
    if (typeof rest.template === 'string' && TEMPLATES.has(rest.template)) {
      if (out.template === undefined) out.template = rest.template;
      delete rest.template;
    }
    if (Object.keys(rest).length) out.properties = rest;
    else delete out.properties;
  }
  if (Object.keys(config).length) out.config = config;
  return out;
}

/** One spelling for what has several: memory units, MACs, config scalars, `network: []`. */
export function canonicalContainer(spec: unknown): unknown {
  if (!isObj(spec)) return spec;
  const out: Obj = { ...spec };
  if (typeof out.memory === 'string' && /^[0-9]+[kKmMgG]?$/.test(out.memory)) out.memory = canonicalMemory(out.memory);
  if (typeof out.cpus === 'number') out.cpus = String(out.cpus);
  if (Array.isArray(out.network)) {
    out.network = out.network.length === 0 ? [{ type: 'empty' }] : out.network.map((i) => (isObj(i) && typeof i.hwaddr === 'string' ? { ...i, hwaddr: i.hwaddr.toLowerCase() } : i));
  }
  if (isObj(out.config)) {
    const c: Obj = {};
    for (const [k, v] of Object.entries(out.config)) {
      const s = (x: unknown) => (typeof x === 'number' || typeof x === 'boolean' ? String(x) : x);
      c[k] = Array.isArray(v) ? (v.length === 1 ? s(v[0]) : v.map(s)) : s(v);
    }
    out.config = c;
  }
  return out;
}

/** For `opd show`: what a document would say (drops read-only facts and defaults). */
function showSpec(spec: Obj): Obj {
  const { rootfs_owned: _o, ...s } = spec;
  if (s.template !== 'none') delete s.rootfs;
  else if (s.rootfs === undefined) delete s.template;
  return s;
}

/** How many containers apply works on at once. */
const APPLY_CONCURRENCY = 4;

async function runStep(ctx: ApplyContext, d: LxcChangeData): Promise<void> {
  switch (d.step) {
    case 'create':
      return create(ctx, d.name, d.spec!);
    case 'configure':
      configure(ctx, d.name, d.spec!);
      if (d.restartIfRunning && (await isRunning(ctx.settings, d.name))) {
        await stop(ctx, d.name);
        await start(ctx, d.name);
      }
      return;
    case 'start':
      return start(ctx, d.name);
    case 'stop':
      return stop(ctx, d.name);
    case 'restart':
      await stop(ctx, d.name);
      return start(ctx, d.name);
    case 'destroy': {
      const what = await destroy(ctx, d.name);
      ctx.log.info({ container: d.name }, `destroyed: ${what}`);
      return;
    }
    case 'recreate':
      await destroy(ctx, d.name);
      return create(ctx, d.name, d.spec!);
    default:
      throw new OpdError('bug', `lxc: unknown step ${String((d as { step?: unknown }).step)}`);
  }
}

/**
 * Split a batch into groups that may run side by side: changes of one container stay together,
 * and so do changes the plan links (a depends_on between two containers). Without the plan's
 * dependency ids (a caller other than the core), everything is one group, run in order.
 */
export function groupChanges(changes: Change[]): Change[][] {
  const planned = changes.every((c) => typeof (c as { id?: unknown }).id === 'number' && Array.isArray((c as { deps?: unknown }).deps));
  if (!planned) return changes.length ? [changes] : [];
  const parent = changes.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  const union = (a: number, b: number) => {
    const x = find(a), y = find(b);
    if (x !== y) parent[Math.max(x, y)] = Math.min(x, y);
  };
  const byName = new Map<string, number>();
  const byId = new Map<number, number>();
  changes.forEach((c, i) => byId.set((c as unknown as { id: number }).id, i));
  changes.forEach((c, i) => {
    const name = (c.data as LxcChangeData | undefined)?.name ?? c.resource;
    const j = byName.get(name);
    if (j === undefined) byName.set(name, i);
    else union(i, j);
    for (const d of (c as unknown as { deps: number[] }).deps) {
      const k = byId.get(d);
      if (k !== undefined) union(i, k);
    }
  });
  const groups = new Map<number, Change[]>();
  changes.forEach((c, i) => {
    const r = find(i);
    groups.set(r, [...(groups.get(r) ?? []), c]);
  });
  return [...groups.keys()].sort((a, b) => a - b).map((k) => groups.get(k)!);
}

const plugin: Plugin<LxcSection> = {
  name: 'lxc',
  schema: JSON.parse(readFileSync(SCHEMA_DIR + 'lxc.schema.json', 'utf8')),
  collections: ['containers'],

  normalize(section: unknown, ctx: NormalizeContext) {
    if (!isObj(section)) return section;
    const out: Obj = { ...section };
    if (Array.isArray(out.containers)) {
      out.containers = arrayToMap(
        out.containers.map((it) => (isObj(it) ? fromOpDbus(it) : it)),
        'id',
        '/plugins/lxc/containers',
        ctx,
      );
    }
    if (isObj(out.containers)) out.containers = Object.fromEntries(Object.entries(out.containers).map(([k, v]) => [k, canonicalContainer(v)]));
    return out;
  },

  async read(ctx: ReadContext, desired: LxcSection): Promise<LxcSection> {
    const named = desired.containers ?? {};
    const all = desired.prune?.containers === true;
    const facts = await readContainers(ctx.settings, (n) => all || n in named);
    const containers: Record<string, Obj> = {};
    for (const [n, f] of facts) containers[n] = { ...f.spec, rootfs_owned: f.rootfsOwned };
    return { containers };
  },

  plan: planContainer,

  async apply(ctx: ApplyContext, changes: Change[]): Promise<ChangeResult[]> {
    // containers are independent of each other unless the plan says otherwise: changes are
    // grouped (same container, or linked by the plan's dependencies) and groups run side by side
    const groups = groupChanges(changes);
    const results = new Map<Change, ChangeResult>();
    const failed = new Set<string>();
    const failedIds = new Set<number>();
    const runGroup = async (group: Change[]) => {
      for (const c of group) {
        const pc = c as Change & { id?: number; deps?: number[] };
        const dep = (c.after ?? []).find((a) => failed.has(a)) ?? (pc.deps ?? []).find((id) => failedIds.has(id))?.toString();
        if (dep !== undefined) {
          failed.add(c.address);
          if (pc.id !== undefined) failedIds.add(pc.id);
          results.set(c, { address: c.address, status: 'failed', error: new OpdError('dependency-failed', `a change it depends on (${dep}) failed`, { address: c.address }) });
          continue;
        }
        try {
          await runStep(ctx, c.data as LxcChangeData);
          results.set(c, { address: c.address, status: 'ok' });
        } catch (err) {
          failed.add(c.address);
          if (pc.id !== undefined) failedIds.add(pc.id);
          results.set(c, { address: c.address, status: 'failed', error: toOpdError(err) });
        }
      }
    };
    let next = 0;
    const worker = async () => {
      while (next < groups.length) await runGroup(groups[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(APPLY_CONCURRENCY, groups.length) }, worker));
    return changes.map((c) => results.get(c)!);
  },

  edges(desired: LxcSection): Edge[] {
    // a veth needs its bridge; emitted for every link (the core ignores edges to resources
    // not in the plan, e.g. a Linux bridge that is not an ovs/bridges resource)
    const edges: Edge[] = [];
    for (const [n, spec] of Object.entries(desired.containers ?? {})) {
      if (!isObj(spec) || !Array.isArray(spec.network)) continue;
      const links = new Set<string>();
      for (const itf of spec.network) if (isObj(itf) && itf.type === 'veth' && typeof itf.link === 'string') links.add(itf.link);
      for (const l of [...links].sort()) edges.push({ from: `lxc/containers/${n}`, to: `ovs/bridges/${l}`, kind: 'veth-link' });
    }
    return edges;
  },

  async show(ctx: ReadContext): Promise<LxcSection> {
    const facts = await readContainers(ctx.settings);
    const containers: Record<string, Obj> = {};
    for (const [n, f] of facts) containers[n] = showSpec(f.spec);
    return { containers };
  },

  async watch(ctx: WatchContext, onDrift: (address?: string) => void): Promise<Disposable> {
    // lxc-monitor prints `'name' changed state to [STATE]`; it starts lxc-monitord for the
    // lxcpath, which exits by itself about 30 s after its last client
    return spawnLines(
      'lxc-monitor',
      ['-P', lxcPath(ctx.settings), '-n', '.*'],
      (line) => {
        const m = /^'([^']+)'/.exec(line);
        onDrift(m ? `lxc/containers/${m[1]}` : undefined);
      },
      ctx.log,
      { env: lxcEnv(ctx.settings) },
    );
  },

  async doctor(ctx: ReadContext): Promise<DoctorCheck[]> {
    const checks: DoctorCheck[] = [];
    const path = lxcPath(ctx.settings);
    try {
      const v = (await run('lxc-ls', ['--version'], { backend: 'lxc', installHint: 'apt-get install lxc busybox-static' })).stdout.trim();
      const missing = ['lxc-create', 'lxc-start', 'lxc-stop', 'lxc-destroy'].filter(
        (t) => !['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(`${d}/${t}`)),
      );
      checks.push({
        name: 'lxc: tools',
        ok: missing.length === 0,
        detail: missing.length ? `lxc ${v}, but ${missing.join(', ')} missing` : `lxc ${v}`,
        hint: missing.length ? 'install the lxc package' : undefined,
      });
    } catch (err) {
      const e = toOpdError(err);
      checks.push({ name: 'lxc: tools', ok: false, detail: e.message, hint: e.hint });
    }
    let probe = path;
    while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
    let writable = true;
    try {
      accessSync(probe, constants.W_OK);
    } catch {
      writable = false;
    }
    checks.push({
      name: 'lxc: lxcpath',
      ok: writable,
      detail: probe === path ? `${path} ${writable ? 'is writable' : 'is not writable'}` : `${path} does not exist yet; ${probe} ${writable ? 'is writable' : 'is not writable'}`,
      hint: writable ? undefined : 'run opd as root or point --lxc-path / OPD_LXC_PATH at a directory you may write',
    });
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    checks.push({ name: 'lxc: cgroups', ok: true, detail: v2 ? 'cgroup v2: memory → lxc.cgroup2.memory.max, cpus → lxc.cgroup2.cpuset.cpus' : 'cgroup v1: memory → lxc.cgroup.memory.limit_in_bytes, cpus → lxc.cgroup.cpuset.cpus' });
    return checks;
  },
};

export default plugin;
