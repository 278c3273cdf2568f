/** Pure planning for LXC: a container diff becomes create / configure / start / stop / restart / destroy steps. */
import type { Change, Obj, ResourceDiff } from '../../core/plugin.js';
import { canonical } from '../../core/canonical.js';
import { isObj } from '../../core/diff.js';

export type LxcStep = 'create' | 'configure' | 'start' | 'stop' | 'restart' | 'destroy' | 'recreate';

export interface LxcChangeData {
  step: LxcStep;
  name: string;
  /** create / recreate: the whole desired spec; configure: the fields to write */
  spec?: Obj;
  /** configure: restart the container afterwards when it runs (the document does not name `running`) */
  restartIfRunning?: boolean;
}

/** Changing these recreates the container (destroy + create). */
export const RECREATE_FIELDS = ['template', 'dist', 'release', 'arch'] as const;
/** Written to the config file. */
export const CONFIG_FIELDS = ['rootfs', 'memory', 'cpus', 'network', 'config', 'autostart'] as const;
/** Take effect only when the container starts. */
export const RESTART_FIELDS = new Set(['rootfs', 'memory', 'cpus', 'network', 'config']);

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

function fmt(v: unknown): string {
  if (v === undefined) return '(unset)';
  if (Array.isArray(v)) return `[${v.map((x) => (isObj(x) ? JSON.stringify(x) : String(x))).join(', ')}]`;
  if (isObj(v)) return JSON.stringify(v);
  return String(v);
}

export function describeInterface(itf: Obj): string {
  const bits = [String(itf.type)];
  if (itf.name) bits.push(String(itf.name));
  if (itf.link) bits.push(`on ${itf.link}`);
  if (itf.ipv4) bits.push(String(itf.ipv4));
  return bits.join(' ');
}

function networkText(cur: unknown, want: unknown): string[] {
  const c = Array.isArray(cur) ? (cur as Obj[]) : [];
  const w = Array.isArray(want) ? (want as Obj[]) : [];
  if (c.length !== w.length)
    return [`network [${c.map(describeInterface).join('; ')}] → [${w.map(describeInterface).join('; ')}]`];
  const out: string[] = [];
  w.forEach((wi, i) => {
    const ci = c[i] ?? {};
    const keys = [...new Set([...Object.keys(ci), ...Object.keys(wi)])].sort();
    for (const k of keys) if (!same(ci[k], wi[k])) out.push(`net${i} ${k} ${fmt(ci[k])} → ${fmt(wi[k])}`);
  });
  return out;
}

function configText(cur: unknown, want: unknown): string[] {
  const c = isObj(cur) ? cur : {};
  const w = isObj(want) ? want : {};
  return Object.keys(w)
    .sort()
    .filter((k) => !same(c[k], w[k]))
    .map((k) => `${k} ${fmt(c[k])} → ${fmt(w[k])}`);
}

export function fieldText(field: string, cur: unknown, want: unknown): string[] {
  if (field === 'network') return networkText(cur, want);
  if (field === 'config') return configText(cur, want);
  return [`${field} ${fmt(cur)} → ${fmt(want)}`];
}

/** A one-line description of a new container. */
export function describeContainer(spec: Obj): string {
  const bits: string[] = [];
  const t = spec.template ?? 'busybox';
  if (t === 'download')
    bits.push(`download ${spec.dist ?? '?'} ${spec.release ?? '?'}${spec.arch ? ' ' + spec.arch : ''}`);
  else if (t === 'none') bits.push(`rootfs ${spec.rootfs}`);
  else bits.push(String(t));
  if (spec.memory) bits.push(`memory ${spec.memory}`);
  if (spec.cpus) bits.push(`cpus ${spec.cpus}`);
  if (Array.isArray(spec.network))
    for (const itf of spec.network as Obj[]) if (itf.type !== 'empty') bits.push(describeInterface(itf));
  if (spec.autostart) bits.push('autostart');
  const n = isObj(spec.config) ? Object.keys(spec.config).length : 0;
  if (n) bits.push(`${n} config key${n === 1 ? '' : 's'}`);
  return bits.join(', ');
}

export function planContainer(diff: ResourceDiff): Change<LxcChangeData>[] {
  const { address, name } = diff;
  const base = { resource: address, plugin: 'lxc' };
  const runAddr = `${address}/running`;
  if (diff.action === 'delete') {
    const cur = diff.current ?? {};
    const rootfs = typeof cur.rootfs === 'string' ? cur.rootfs : undefined;
    const summary =
      cur.rootfs_owned === true
        ? `container and its rootfs ${rootfs}`
        : `container; keeps its rootfs${rootfs ? ' ' + rootfs : ''} (opd did not create it)`;
    return [
      {
        ...base,
        address,
        action: 'delete',
        summary,
        destructive: true,
        ops: diff.ops,
        data: { step: 'destroy', name } satisfies LxcChangeData,
      },
    ];
  }
  const want = diff.desired!;
  const spec: Obj = { template: 'busybox', ...want };
  /** The container built from the whole spec (create, or recreate), then started when the document wants it running. */
  const build = (
    step: 'create' | 'recreate',
    what: Pick<Change<LxcChangeData>, 'summary' | 'reason' | 'destructive'>,
  ): Change<LxcChangeData>[] => {
    const out: Change<LxcChangeData>[] = [
      { ...base, address, action: step, ...what, ops: diff.ops, data: { step, name, spec } },
    ];
    if (want.running === true)
      out.push({
        ...base,
        address: runAddr,
        action: 'start',
        summary: 'container',
        after: [address],
        data: { step: 'start', name } satisfies LxcChangeData,
      });
    return out;
  };
  if (diff.action === 'create') return build('create', { summary: describeContainer(spec) });
  const cur = diff.current ?? {};
  const changed = (f: string) => f in want && !same(cur[f], want[f]);
  const out: Change<LxcChangeData>[] = [];
  const recreate = RECREATE_FIELDS.filter(changed);
  if (recreate.length)
    return build('recreate', {
      summary: recreate.flatMap((f) => fieldText(f, cur[f], want[f])).join(', '),
      reason: 'the template decides how the container is built: it is destroyed and created again',
      destructive: true,
    });
  const fields = CONFIG_FIELDS.filter(changed);
  const restartFor = fields.filter((f) => RESTART_FIELDS.has(f));
  const why = restartFor.length ? `${restartFor.join(', ')} changed` : '';
  const opsFor = (paths: readonly string[]) =>
    diff.ops.filter((o) => paths.some((p) => o.path === `/${p}` || o.path.startsWith(`/${p}/`)));
  const wantRunning = want.running as boolean | undefined;
  const curRunning = cur.running as boolean | undefined;
  if (fields.length) {
    const spec: Obj = {};
    for (const f of fields) spec[f] = want[f];
    const restartIfRunning = wantRunning === undefined && restartFor.length > 0;
    out.push({
      ...base,
      address,
      action: 'update',
      summary: fields.flatMap((f) => fieldText(f, cur[f], want[f])).join(', '),
      ...(restartIfRunning ? { reason: `restart if running: ${why}` } : {}),
      ops: opsFor(fields),
      data: {
        step: 'configure',
        name,
        spec,
        ...(restartIfRunning ? { restartIfRunning } : {}),
      } satisfies LxcChangeData,
    });
  }
  const after = fields.length ? [address] : [];
  const runOps = opsFor(['running']);
  if (wantRunning === true && curRunning !== true) {
    out.push({
      ...base,
      address: runAddr,
      action: 'start',
      summary: 'container',
      after,
      ops: runOps,
      data: { step: 'start', name } satisfies LxcChangeData,
    });
  } else if (wantRunning === false && curRunning === true) {
    out.push({
      ...base,
      address: runAddr,
      action: 'stop',
      summary: 'container',
      reason: 'graceful stop, killed after the timeout',
      ops: runOps,
      data: { step: 'stop', name } satisfies LxcChangeData,
    });
  } else if (wantRunning === true && curRunning === true && restartFor.length) {
    out.push({
      ...base,
      address: runAddr,
      action: 'restart',
      summary: 'container',
      reason: why,
      after,
      data: { step: 'restart', name } satisfies LxcChangeData,
    });
  }
  return out;
}
