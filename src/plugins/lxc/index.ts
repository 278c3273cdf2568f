/**
 * lxc: LXC system containers through the lxc-* tools and a configurable lxcpath
 * (--lxc-path / OPD_LXC_PATH). Reads: one `lxc-ls --fancy` plus each container's config file.
 */
import { sectionSpec } from '../../core/schema-file.js';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ApplyContext, DoctorCheck, Edge, NormalizeContext, Obj, Plugin } from '../../core/plugin.js';
import { applyEach } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { arrayToMap } from '../../core/normalize.js';
import { isObj } from '../../core/diff.js';
import { runRead, spawnLines } from '../../exec.js';
import { canonicalMemory, type ContainerState } from './config.js';
import type { LxcDoc } from './section.gen.js';
import { planContainer, type LxcChangeData } from './plan.js';
import { configure, create, destroy, isRunning, lxcEnv, lxcPath, readContainers, start, stop } from './backend.js';
import { settingOf } from '../../core/manifest.js';
import manifest, { PVE_STORAGE_CFG } from './manifest.js';

/** The section's type, generated from schema/lxc.schema.json (npm run gen:types); as read, a container is a ContainerState. */
export type LxcSection = Omit<LxcDoc, 'containers'> & { containers?: Record<string, ContainerState> } & Obj;

const TEMPLATES = new Set(['busybox', 'download', 'none', 'archive']);

/** Debian/Ubuntu release numbers → the codenames the LXC download template knows. */
const CODENAMES: Record<string, Record<string, string>> = {
  debian: { '10': 'buster', '11': 'bullseye', '12': 'bookworm', '13': 'trixie' },
  ubuntu: { '20.04': 'focal', '22.04': 'jammy', '24.04': 'noble' },
};

/** Where Proxmox keeps a storage's vztmpl archives: <path>/template/cache (storage.cfg, or the defaults). */
export function proxmoxTemplatePath(
  storage: string,
  file: string,
  storageCfg = settingOf({}, PVE_STORAGE_CFG)!,
): { path: string; looked: string[] } {
  const paths: string[] = [];
  try {
    let cur: string | undefined;
    for (const line of readFileSync(storageCfg, 'utf8').split('\n')) {
      const head = /^([a-z0-9]+):\s*(\S+)\s*$/.exec(line);
      if (head) cur = head[2];
      const p = /^\s+path\s+(\S+)/.exec(line);
      if (p && cur === storage) paths.push(join(p[1], 'template', 'cache', file));
    }
  } catch {
    /* no Proxmox storage configuration on this host */
  }
  if (storage === 'local') paths.push(join('/var/lib/vz/template/cache', file));
  paths.push(join('/var/lib/pve', storage, 'template', 'cache', file));
  const looked = [...new Set(paths)];
  return { path: looked.find((x) => existsSync(x)) ?? '', looked };
}

/** op-dbus `template` (in properties or on the container) → opd's template fields, or a refusal. */
function mapTemplate(t: unknown, at: string, out: Obj, ctx: NormalizeContext): void {
  if (typeof t !== 'string') {
    ctx.refuse(at, 'an op-dbus template must be a string');
    return;
  }
  if (TEMPLATES.has(t)) {
    if (out.template === undefined) out.template = t;
    return;
  }
  const pve = /^([A-Za-z0-9_.-]+):vztmpl\/([^/]+\.tar(\.(gz|xz|zst))?)$/.exec(t);
  if (pve) {
    const { path, looked } = proxmoxTemplatePath(pve[1], pve[2]);
    if (!path) {
      ctx.refuse(
        at,
        `Proxmox template ${JSON.stringify(t)} is not on this host (looked in ${looked.join(', ')})`,
        `download it there (pveam download ${pve[1]} ${pve[2]}) or copy the archive there, or use template busybox, download (dist/release) or archive with the path of a root filesystem tarball`,
      );
      return;
    }
    out.template = 'archive';
    out.archive = path;
    return;
  }
  const dist = /^(debian|ubuntu)-([0-9.]+)(-standard.*)?$/.exec(t);
  if (dist && CODENAMES[dist[1]][dist[2]]) {
    out.template = 'download';
    out.dist = dist[1];
    out.release = CODENAMES[dist[1]][dist[2]];
    ctx.warn(
      at,
      `template ${JSON.stringify(t)} read as the LXC download template (dist ${dist[1]}, release ${out.release}): creating it needs the internet`,
      'offline, use template busybox or archive (a root filesystem tarball on the host)',
    );
    return;
  }
  ctx.refuse(
    at,
    `op-dbus template ${JSON.stringify(t)} is not one opd can create from`,
    'use busybox, download (with dist and release), none (an existing rootfs), archive (a tarball), a Proxmox reference storage:vztmpl/<file>.tar.zst that exists on the host, or debian-<N>/ubuntu-<N>',
  );
}

const PROPERTY_KEYS = [
  'hostname',
  'name',
  'memory',
  'cores',
  'onboot',
  'ipv4_address',
  'ipv4',
  'network_type',
  'template',
];

/** op-dbus `plugins.lxc.containers[]` entry (ContainerInfo: id, veth, bridge, running, properties) → opd container (keyed by `id`). */
export function fromOpDbus(item: Obj, src: string, ctx: NormalizeContext): Obj {
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
  const props: Obj = isObj(out.properties) ? { ...out.properties } : {};
  delete out.properties;
  const pat = `${src}/properties`;
  // network_type: op-dbus puts netmaker containers on the mesh bridge
  let bridge = out.bridge;
  if (props.network_type !== undefined) {
    const nt = props.network_type;
    if (nt === 'netmaker') {
      bridge = 'mesh';
      ctx.warn(
        `${pat}/network_type`,
        'network_type: netmaker: the container is put on the mesh bridge as op-dbus does, but opd does not enroll it in netmaker (no netclient join, no token injection)',
        'join the mesh from inside the container (netclient join) or from a unit in its template',
      );
    } else if (nt !== 'bridge' && nt !== 'veth') {
      ctx.refuse(
        `${pat}/network_type`,
        `op-dbus network_type ${JSON.stringify(nt)} is not supported`,
        'use bridge (or veth): the container gets a veth on its `bridge`; netmaker puts it on mesh',
      );
    }
  }
  if ((out.veth !== undefined || bridge !== undefined) && out.network === undefined) {
    const itf: Obj = { type: 'veth' };
    if (bridge !== undefined) itf.link = bridge;
    if (out.veth !== undefined) itf.name = out.veth;
    out.network = [itf];
  }
  delete out.veth;
  delete out.bridge;
  const num = (v: unknown) =>
    typeof v === 'number' && Number.isInteger(v)
      ? v
      : typeof v === 'string' && /^[0-9]+$/.test(v)
        ? Number(v)
        : undefined;
  for (const [k, v] of Object.entries(props)) {
    const at = `${pat}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    switch (k) {
      case 'memory': {
        const mem = num(v);
        if (mem === undefined || mem <= 0)
          ctx.refuse(at, `op-dbus memory ${JSON.stringify(v)} is not a number of MiB`, 'write memory in MiB, e.g. 512');
        else if (out.memory === undefined) out.memory = `${mem}M`;
        break;
      }
      case 'cores': {
        // a CPU count (Proxmox --cores): a quota of that many CPUs, not a pin to CPUs 0..n-1
        const cores = num(v);
        if (cores === undefined || cores <= 0 || cores > 8192)
          ctx.refuse(at, `op-dbus cores ${JSON.stringify(v)} is not a CPU count`, 'write the number of CPUs, e.g. 2');
        else config['lxc.cgroup2.cpu.max'] = `${cores * 100000} 100000`;
        break;
      }
      case 'onboot':
        if (typeof v !== 'boolean') ctx.refuse(at, 'op-dbus onboot must be true or false');
        else if (out.autostart === undefined) out.autostart = v;
        break;
      case 'hostname':
      case 'name':
        if (typeof v !== 'string') ctx.refuse(at, `op-dbus ${k} must be a string`);
        else config['lxc.uts.name'] = v;
        break;
      case 'ipv4_address':
      case 'ipv4': {
        const net = Array.isArray(out.network) ? (out.network as unknown[]) : [];
        if (typeof v !== 'string' || !/^([0-9]{1,3}\.){3}[0-9]{1,3}\/[0-9]{1,2}$/.test(v)) {
          ctx.refuse(
            at,
            `op-dbus ${k} ${JSON.stringify(v)} is not an IPv4 address with its prefix length`,
            'write it as 10.0.0.5/24',
          );
        } else if (!net.length || !isObj(net[0])) {
          ctx.refuse(
            at,
            `op-dbus ${k} needs the container's network: it has no \`bridge\`/\`veth\``,
            'add bridge: <the bridge its veth joins>',
          );
        } else out.network = [{ ...(net[0] as Obj), ipv4: v }, ...net.slice(1)];
        break;
      }
      case 'network_type':
        break; // above
      case 'template':
        mapTemplate(v, at, out, ctx);
        break;
      default:
        ctx.refuse(
          at,
          `op-dbus container property "${k}" is not supported`,
          `opd maps ${PROPERTY_KEYS.join(', ')}; remove it${k.startsWith('netmaker') ? ' (netmaker enrollment is not done by opd)' : ''}`,
        );
    }
  }
  if (typeof out.template === 'string' && !TEMPLATES.has(out.template) && out.template !== 'archive') {
    const t = out.template;
    delete out.template;
    mapTemplate(t, `${src}/template`, out, ctx);
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
    out.network =
      out.network.length === 0
        ? [{ type: 'empty' }]
        : out.network.map((i) =>
            isObj(i) && typeof i.hwaddr === 'string' ? { ...i, hwaddr: i.hwaddr.toLowerCase() } : i,
          );
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
function showSpec(spec: ContainerState): ContainerState {
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
      await configure(ctx, d.name, d.spec!);
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

const plugin: Plugin<LxcSection, LxcChangeData> = {
  ...sectionSpec(manifest),

  normalize(section, ctx) {
    if (!isObj(section)) return section;
    const out: Obj = { ...section };
    if (Array.isArray(out.containers)) {
      out.containers = arrayToMap(
        out.containers.map((it, i) => (isObj(it) ? fromOpDbus(it, `/plugins/lxc/containers/${i}`, ctx) : it)),
        'id',
        '/plugins/lxc/containers',
        ctx,
      );
    }
    if (isObj(out.containers))
      out.containers = Object.fromEntries(Object.entries(out.containers).map(([k, v]) => [k, canonicalContainer(v)]));
    return out;
  },

  async read(ctx, desired) {
    const named = desired.containers ?? {};
    const all = desired.prune?.containers === true;
    const facts = await readContainers(ctx.settings, (n) => all || n in named);
    const containers: Record<string, ContainerState> = {};
    for (const [n, f] of facts) containers[n] = { ...f.spec, rootfs_owned: f.rootfsOwned };
    return { containers };
  },

  plan: planContainer,

  // containers are independent of each other unless the plan says otherwise: the core runs
  // up to this many changes side by side, each once the changes it needs are done
  concurrency: APPLY_CONCURRENCY,
  apply: applyEach((ctx, c) => runStep(ctx, c.data!)),

  edges(desired) {
    // a veth needs its bridge; emitted for every link (the core ignores edges to resources
    // not in the plan, e.g. a Linux bridge that is not an ovs/bridges resource)
    const edges: Edge[] = [];
    for (const [n, spec] of Object.entries(desired.containers ?? {})) {
      const links = new Set<string>();
      for (const itf of spec.network ?? []) if (itf.type === 'veth' && itf.link !== undefined) links.add(itf.link);
      for (const l of [...links].sort())
        edges.push({ from: `lxc/containers/${n}`, to: `ovs/bridges/${l}`, kind: 'veth-link' });
    }
    return edges;
  },

  async show(ctx) {
    const facts = await readContainers(ctx.settings);
    const containers: Record<string, ContainerState> = {};
    for (const [n, f] of facts) containers[n] = showSpec(f.spec);
    return { containers };
  },

  async watch(ctx, onDrift) {
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

  async doctor(ctx) {
    const checks: DoctorCheck[] = [];
    const path = lxcPath(ctx.settings);
    try {
      const v = (
        await runRead('lxc-ls', ['--version'], { backend: 'lxc', installHint: 'apt-get install lxc busybox-static' })
      ).stdout.trim();
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
      detail:
        probe === path
          ? `${path} ${writable ? 'is writable' : 'is not writable'}`
          : `${path} does not exist yet; ${probe} ${writable ? 'is writable' : 'is not writable'}`,
      hint: writable ? undefined : 'run opd as root or point --lxc-path / OPD_LXC_PATH at a directory you may write',
    });
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    checks.push({
      name: 'lxc: cgroups',
      ok: true,
      detail: v2
        ? 'cgroup v2: memory → lxc.cgroup2.memory.max, cpus → lxc.cgroup2.cpuset.cpus'
        : 'cgroup v1: memory → lxc.cgroup.memory.limit_in_bytes, cpus → lxc.cgroup.cpuset.cpus',
    });
    return checks;
  },
};

export default plugin;
