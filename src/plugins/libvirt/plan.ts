/**
 * Pure planning for libvirt: a resource diff becomes changes whose payload is a list of
 * steps (virsh operations) that apply() runs in order.
 */
import type { Change, Obj, ResourceDiff } from '../../core/plugin.js';
import { canonical } from '../../core/canonical.js';
import { isObj } from '../../core/diff.js';
import { TUNABLES } from './manifest.js';

export type Step =
  | { op: 'dom-define'; name: string; spec?: Obj; xml?: string }
  | { op: 'dom-start' | 'dom-undefine'; name: string }
  | { op: 'dom-stop'; name: string; timeout: number }
  | { op: 'dom-autostart'; name: string; on: boolean }
  | { op: 'net-define'; name: string; spec: Obj }
  | { op: 'net-start' | 'net-stop' | 'net-undefine'; name: string }
  | { op: 'net-autostart'; name: string; on: boolean }
  | { op: 'pool-define'; name: string; spec: Obj }
  | { op: 'pool-build' | 'pool-start' | 'pool-stop' | 'pool-undefine'; name: string }
  | { op: 'pool-autostart'; name: string; on: boolean }
  | { op: 'vol-create'; pool: string; name: string; capacity: number; format: string }
  | { op: 'vol-resize'; pool: string; name: string; capacity: number; shrink: boolean }
  | { op: 'vol-delete'; pool: string; name: string };

export interface LibvirtChangeData {
  steps: Step[];
}

export const DEFAULT_SHUTDOWN_TIMEOUT = TUNABLES.libvirtShutdownS;

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

export function fmtBytes(n: unknown): string {
  if (typeof n !== 'number') return String(n);
  for (const [u, f] of [
    ['T', 1024 ** 4],
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['K', 1024],
  ] as const)
    if (n >= f && n % f === 0) return `${n / f}${u}`;
  return `${n}B`;
}

function fmt(key: string, v: unknown): string {
  if (v === undefined) return '(unset)';
  if (key === 'memory') return `${v} MiB`;
  if (key === 'capacity') return fmtBytes(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function fieldText(cur: Obj, want: Obj, keys: string[]): string[] {
  const out: string[] = [];
  for (const k of keys) {
    if (want[k] === undefined || same(cur[k], want[k])) continue;
    if (k === 'xml') out.push('xml definition changed');
    else if (k === 'disks' || k === 'interfaces' || k === 'volumes') out.push(`${k} changed`);
    else out.push(`${k} ${fmt(k, cur[k])} → ${fmt(k, want[k])}`);
  }
  return out;
}

function opsUnder(diff: ResourceDiff, keys: string[]): ResourceDiff['ops'] {
  return diff.ops.filter((o) => keys.some((k) => o.path === `/${k}` || o.path.startsWith(`/${k}/`)));
}

const DOMAIN_DEF = ['type', 'memory', 'vcpus', 'boot', 'disks', 'interfaces', 'graphics', 'serial', 'xml'];
const NET_DEF = ['forward', 'bridge', 'ovs', 'ip'];
const POOL_DEF = ['type', 'path'];

function describeDomain(s: Obj): string {
  if (s.xml !== undefined) return 'from raw xml';
  const bits: string[] = [];
  if (s.memory !== undefined) bits.push(`${s.memory} MiB`);
  if (s.vcpus !== undefined) bits.push(`${s.vcpus} vcpu`);
  if (isObj(s.disks)) bits.push(`disks ${Object.keys(s.disks).sort().join(',')}`);
  if (Array.isArray(s.interfaces)) bits.push(`${s.interfaces.length} interface(s)`);
  if (isObj(s.graphics) && s.graphics.type !== 'none') bits.push(String(s.graphics.type));
  return bits.join(', ') || 'domain';
}

function describeNetwork(s: Obj): string {
  const bits: string[] = [`forward ${s.forward ?? 'nat'}`];
  if (s.bridge) bits.push(`bridge ${s.bridge}${s.ovs ? ' (ovs)' : ''}`);
  if (isObj(s.ip)) {
    bits.push(`${s.ip.address}/${s.ip.prefix ?? 24}`);
    if (isObj(s.ip.dhcp)) bits.push(`dhcp ${s.ip.dhcp.start}-${s.ip.dhcp.end}`);
  }
  return bits.join(', ');
}

export function planLibvirt(diff: ResourceDiff): Change<LibvirtChangeData>[] {
  if (diff.collection === 'domains') return planDomain(diff);
  if (diff.collection === 'networks') return planNetwork(diff);
  if (diff.collection === 'pools') return planPool(diff);
  return [];
}

function planDomain(diff: ResourceDiff): Change<LibvirtChangeData>[] {
  const { name, address } = diff;
  const base = { resource: address, plugin: 'libvirt' };
  const timeout = (s: Obj | undefined) =>
    typeof s?.shutdown_timeout === 'number' ? s.shutdown_timeout : DEFAULT_SHUTDOWN_TIMEOUT;
  if (diff.action === 'delete') {
    const cur = diff.current ?? {};
    const steps: Step[] = [];
    if (cur.running === true) steps.push({ op: 'dom-stop', name, timeout: timeout(cur) });
    steps.push({ op: 'dom-undefine', name });
    return [
      {
        ...base,
        address,
        action: 'delete',
        summary: cur.running === true ? 'shut down and undefine (disks are kept)' : 'undefine (disks are kept)',
        ops: diff.ops,
        data: { steps } satisfies LibvirtChangeData,
      },
    ];
  }
  const want = diff.desired!;
  const defSpec = definition(want, DOMAIN_DEF);
  const out: Change<LibvirtChangeData>[] = [];
  const run = `${address}/running`;
  const auto = `${address}/autostart`;
  if (diff.action === 'create') {
    const steps: Step[] = [
      want.xml !== undefined
        ? { op: 'dom-define', name, xml: want.xml as string }
        : { op: 'dom-define', name, spec: defSpec },
    ];
    out.push({
      ...base,
      address,
      action: 'create',
      summary: describeDomain(want),
      ops: diff.ops,
      data: { steps } satisfies LibvirtChangeData,
    });
    if (want.autostart === true)
      out.push({
        ...base,
        address: auto,
        action: 'update',
        summary: 'autostart on',
        after: [address],
        data: { steps: [{ op: 'dom-autostart', name, on: true }] } satisfies LibvirtChangeData,
      });
    if (want.running === true)
      out.push({
        ...base,
        address: run,
        action: 'start',
        summary: '',
        after: [address],
        data: { steps: [{ op: 'dom-start', name }] } satisfies LibvirtChangeData,
      });
    return out;
  }
  const cur = diff.current!;
  const text = fieldText(cur, want, DOMAIN_DEF);
  const defined = text.length > 0;
  if (defined) {
    const step: Step =
      want.xml !== undefined
        ? { op: 'dom-define', name, xml: want.xml as string }
        : { op: 'dom-define', name, spec: defSpec };
    const later =
      want.running === true && cur.running === true
        ? ''
        : want.running === undefined
          ? ' (a running domain picks it up at its next start)'
          : '';
    out.push({
      ...base,
      address,
      action: 'update',
      summary: text.join(', ') + later,
      ops: opsUnder(diff, DOMAIN_DEF),
      data: { steps: [step] } satisfies LibvirtChangeData,
    });
  }
  if (want.autostart !== undefined && want.autostart !== cur.autostart)
    out.push({
      ...base,
      address: auto,
      action: 'update',
      summary: `autostart ${cur.autostart ? 'on' : 'off'} → ${want.autostart ? 'on' : 'off'}`,
      ops: opsUnder(diff, ['autostart']),
      data: { steps: [{ op: 'dom-autostart', name, on: want.autostart as boolean }] } satisfies LibvirtChangeData,
    });
  if (want.running === true && cur.running !== true)
    out.push({
      ...base,
      address: run,
      action: 'start',
      summary: '',
      ops: opsUnder(diff, ['running']),
      ...(defined ? { after: [address] } : {}),
      data: { steps: [{ op: 'dom-start', name }] } satisfies LibvirtChangeData,
    });
  else if (want.running === false && cur.running === true)
    out.push({
      ...base,
      address: run,
      action: 'stop',
      summary: `graceful shutdown, destroy after ${timeout(want)} s`,
      ops: opsUnder(diff, ['running']),
      data: { steps: [{ op: 'dom-stop', name, timeout: timeout(want) }] } satisfies LibvirtChangeData,
    });
  else if (defined && want.running === true && cur.running === true)
    out.push({
      ...base,
      address: run,
      action: 'restart',
      summary: `graceful shutdown (destroy after ${timeout(want)} s), then start`,
      reason: 'the definition changed',
      after: [address],
      data: {
        steps: [
          { op: 'dom-stop', name, timeout: timeout(want) },
          { op: 'dom-start', name },
        ],
      } satisfies LibvirtChangeData,
    });
  return out;
}

function planNetwork(diff: ResourceDiff): Change<LibvirtChangeData>[] {
  const { name, address } = diff;
  const base = { resource: address, plugin: 'libvirt' };
  if (diff.action === 'delete') return [undefine('net', diff, 'undefine')];
  const want = diff.desired!;
  const defSpec = definition(want, NET_DEF);
  const act = `${address}/active`;
  if (diff.action === 'create') {
    const started = (want.active !== false ? ', started' : '') + (want.autostart ? ', autostart' : '');
    return [created('net', diff, defSpec, { summary: describeNetwork(want) + started, ops: diff.ops })];
  }
  const cur = diff.current!;
  const out: Change<LibvirtChangeData>[] = [];
  const text = fieldText(cur, want, NET_DEF);
  if (text.length) {
    out.push({
      ...base,
      address,
      action: 'update',
      summary:
        text.join(', ') + (want.active === undefined ? ' (an active network picks it up at its next start)' : ''),
      ops: opsUnder(diff, NET_DEF),
      data: { steps: [{ op: 'net-define', name, spec: defSpec }] } satisfies LibvirtChangeData,
    });
    if (want.active === true && cur.active === true)
      out.push({
        ...base,
        address: act,
        action: 'restart',
        summary: '',
        reason: 'the definition changed (attached guests lose their link until they reattach)',
        after: [address],
        data: {
          steps: [
            { op: 'net-stop', name },
            { op: 'net-start', name },
          ],
        } satisfies LibvirtChangeData,
      });
  }
  out.push(...lifecycle('net', diff, cur, want, text.length > 0));
  return out;
}

/** The fields of `want` that make up the libvirt definition (`keys`). */
function definition(want: Obj, keys: readonly string[]): Obj {
  const out: Obj = {};
  for (const k of keys) if (want[k] !== undefined) out[k] = want[k];
  return out;
}

/**
 * The change creating a network or a pool (`kind`) from its definition `spec`: define it (and
 * build a pool's directory), start it unless the document says `active: false`, and mark it
 * autostart when asked.
 */
function created(
  kind: 'net' | 'pool',
  diff: ResourceDiff,
  spec: Obj,
  what: Pick<Change, 'summary' | 'ops'>,
): Change<LibvirtChangeData> {
  const { name, address } = diff;
  const want = diff.desired!;
  const steps: Step[] = [{ op: `${kind}-define`, name, spec }];
  if (kind === 'pool') steps.push({ op: 'pool-build', name });
  if (want.active !== false) steps.push({ op: `${kind}-start`, name });
  if (want.autostart === true) steps.push({ op: `${kind}-autostart`, name, on: true });
  return { resource: address, plugin: 'libvirt', address, action: 'create', ...what, data: { steps } };
}

/** The delete of a network or a pool (`kind`): stopped first when it is active, then undefined. */
function undefine(kind: 'net' | 'pool', diff: ResourceDiff, what: string): Change<LibvirtChangeData> {
  const { name, address } = diff;
  const active = diff.current?.active === true;
  const steps: Step[] = active ? [{ op: `${kind}-stop`, name }] : [];
  steps.push({ op: `${kind}-undefine`, name });
  return {
    resource: address,
    plugin: 'libvirt',
    address,
    action: 'delete',
    summary: active ? `stop and ${what}` : what,
    ops: diff.ops,
    data: { steps },
  };
}

/**
 * The start, stop and autostart changes of a network or a pool (`kind`): a start comes after
 * the change of its definition (`defined`).
 */
function lifecycle(
  kind: 'net' | 'pool',
  diff: ResourceDiff,
  cur: Obj,
  want: Obj,
  defined: boolean,
): Change<LibvirtChangeData>[] {
  const { address, name } = diff;
  const base = { resource: address, plugin: 'libvirt' };
  const act = `${address}/active`;
  const out: Change<LibvirtChangeData>[] = [];
  if (want.active === true && cur.active !== true)
    out.push({
      ...base,
      address: act,
      action: 'start',
      summary: '',
      ops: opsUnder(diff, ['active']),
      ...(defined ? { after: [address] } : {}),
      data: { steps: [{ op: `${kind}-start`, name }] },
    });
  if (want.active === false && cur.active === true)
    out.push({
      ...base,
      address: act,
      action: 'stop',
      summary: '',
      ops: opsUnder(diff, ['active']),
      data: { steps: [{ op: `${kind}-stop`, name }] },
    });
  if (want.autostart !== undefined && want.autostart !== cur.autostart)
    out.push({
      ...base,
      address: `${address}/autostart`,
      action: 'update',
      summary: `autostart ${cur.autostart ? 'on' : 'off'} → ${want.autostart ? 'on' : 'off'}`,
      ops: opsUnder(diff, ['autostart']),
      data: { steps: [{ op: `${kind}-autostart`, name, on: want.autostart === true }] },
    });
  return out;
}

function planVolumes(
  diff: ResourceDiff,
  cur: Obj,
  want: Obj,
  poolChange: string | undefined,
): Change<LibvirtChangeData>[] {
  const pool = diff.name;
  const base = { resource: diff.address, plugin: 'libvirt' };
  const cv = (isObj(cur.volumes) ? cur.volumes : {}) as Record<string, Obj>;
  const wv = (isObj(want.volumes) ? want.volumes : {}) as Record<string, Obj>;
  const out: Change<LibvirtChangeData>[] = [];
  for (const v of [...new Set([...Object.keys(cv), ...Object.keys(wv)])].sort()) {
    const a = `${diff.address}/volumes/${v}`;
    const ops = diff.ops.filter(
      (o) =>
        o.path === `/volumes/${v}` ||
        o.path.startsWith(`/volumes/${v}/`) ||
        (o.path === '/volumes' && diff.action === 'create'),
    );
    const w = wv[v];
    const c = cv[v];
    const after = poolChange ? { after: [poolChange] } : {};
    if (w && !c) {
      const format = (w.format as string) ?? 'qcow2';
      out.push({
        ...base,
        address: a,
        action: 'create',
        summary: `${format} volume ${fmtBytes(w.capacity ?? 1024 ** 3)}`,
        ops,
        ...after,
        data: {
          steps: [{ op: 'vol-create', pool, name: v, capacity: (w.capacity as number) ?? 1024 ** 3, format }],
        } satisfies LibvirtChangeData,
      });
    } else if (!w && c) {
      out.push({
        ...base,
        address: a,
        action: 'delete',
        summary: 'volume and its data',
        destructive: true,
        ops,
        data: { steps: [{ op: 'vol-delete', pool, name: v }] } satisfies LibvirtChangeData,
      });
    } else if (w && c) {
      if (w.format !== undefined && w.format !== c.format) {
        out.push({
          ...base,
          address: a,
          action: 'recreate',
          summary: `format ${c.format} → ${w.format} (the volume's data is lost)`,
          destructive: true,
          ops,
          data: {
            steps: [
              { op: 'vol-delete', pool, name: v },
              {
                op: 'vol-create',
                pool,
                name: v,
                capacity: (w.capacity as number) ?? (c.capacity as number),
                format: w.format as string,
              },
            ],
          } satisfies LibvirtChangeData,
        });
      } else if (w.capacity !== undefined && w.capacity !== c.capacity) {
        const shrink = (w.capacity as number) < (c.capacity as number);
        out.push({
          ...base,
          address: a,
          action: 'update',
          summary: `capacity ${fmtBytes(c.capacity)} → ${fmtBytes(w.capacity)}${shrink ? ' (shrinking cuts off data)' : ''}`,
          ...(shrink ? { destructive: true } : {}),
          ops,
          data: {
            steps: [{ op: 'vol-resize', pool, name: v, capacity: w.capacity as number, shrink }],
          } satisfies LibvirtChangeData,
        });
      }
    }
  }
  return out;
}

function planPool(diff: ResourceDiff): Change<LibvirtChangeData>[] {
  const { name, address } = diff;
  const base = { resource: address, plugin: 'libvirt' };
  if (diff.action === 'delete') return [undefine('pool', diff, 'undefine (the directory and its volumes are kept)')];
  const want = diff.desired!;
  const defSpec = definition(want, POOL_DEF);
  if (diff.action === 'create') {
    const pool = created('pool', diff, defSpec, {
      summary: `${want.type ?? 'dir'} pool at ${want.path}`,
      ops: diff.ops.filter((o) => !o.path.startsWith('/volumes/')),
    });
    return [pool, ...planVolumes(diff, {}, want, address)];
  }
  const cur = diff.current!;
  const out: Change<LibvirtChangeData>[] = [];
  const text = fieldText(cur, want, POOL_DEF);
  const act = `${address}/active`;
  if (text.length) {
    const restart = cur.active === true && want.active !== false;
    const steps: Step[] = [
      ...(restart ? [{ op: 'pool-stop', name } as Step] : []),
      { op: 'pool-define', name, spec: defSpec },
      { op: 'pool-build', name },
      ...(restart ? [{ op: 'pool-start', name } as Step] : []),
    ];
    out.push({
      ...base,
      address,
      action: 'update',
      summary: text.join(', '),
      ops: opsUnder(diff, POOL_DEF),
      data: { steps } satisfies LibvirtChangeData,
    });
  }
  out.push(...lifecycle('pool', diff, cur, want, text.length > 0));
  const poolDep = text.length ? address : want.active === true && cur.active !== true ? act : undefined;
  out.push(...planVolumes(diff, cur, want, poolDep));
  return out;
}
