/**
 * net: Linux links (bridges, veth pairs, existing devices and OVS internal interfaces), link
 * state and MTU, IPv4/IPv6 addresses and routes, through iproute2 (`ip -j`, `ip -batch`).
 * Reads: `ip -j -d addr show` and one `ip -j route show` per family. Apply: one `ip -batch`.
 * Only the addresses and routes the document names are added or removed.
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import type { Change, ChangeResult, Edge, Obj, Plugin } from '../../core/plugin.js';
import { assertApplyContext } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { ExecFailure, spawnLines } from '../../exec.js';
import { heldBy, ip, ipMutate, kindOf, netnsOf, readHost, toIface, type IfaceState, type RawLink } from './host.js';
import { planInterface, takeOverCmds, type NetChangeData } from './plan.js';
import { normalizeNet } from './normalize.js';
import type { NetDoc } from './section.gen.js';

/** The section's type, generated from schema/net.schema.json (npm run gen:types); as read, a link may be of any kind. */
export type NetSection = Omit<NetDoc, 'interfaces'> & { interfaces?: Record<string, IfaceState> } & Obj;

/** Turn ip's stderr into an error that says what to do. */
export function ipError(stderr: string, change: Change<NetChangeData>): OpdError {
  const data = change.data!;
  const msg =
    stderr
      .split('\n')
      .filter((l) => l.trim() && !/^Command failed/.test(l))
      .join('; ')
      .trim() || 'ip failed';
  let hint = 'see the ip error above';
  if (/Unknown device type|Operation not supported/.test(msg))
    hint =
      'the kernel has no support for this link type (its module is not loaded, and this host cannot load modules); use another kind';
  else if (/Cannot find device|does not exist/.test(msg))
    hint = `interface ${data.ifname} does not exist: give it a kind opd can create (bridge, veth, dummy), or let the plugin that creates it (ovs, lxc) run first (depends_on)`;
  else if (/File exists/.test(msg) && change.address.includes('/routes/'))
    hint =
      'a route to this destination with the same metric already exists (perhaps on another device); opd never deletes a route it did not declare: give this route another metric or remove the other one';
  else if (/Nexthop has invalid gateway|Network is unreachable|Network is down/.test(msg))
    hint = `the gateway must be reachable through ${data.ifname}: bring it up (up: true) and give it an address in the gateway's subnet`;
  else if (/File exists/.test(msg)) hint = `a link named ${data.ifname} exists already with another kind`;
  else if (/Operation not permitted/.test(msg))
    return new OpdError('permission', `ip: ${msg}`, {
      address: change.address,
      hint: 'run opd as root (CAP_NET_ADMIN)',
    });
  else if (/Invalid "netns"|Cannot open network namespace/.test(msg))
    hint = 'the network namespace of --netns / OPD_NETNS does not exist (ip netns list)';
  return new OpdError('backend-failed', `ip: ${msg}`, { address: change.address, hint });
}

const plugin: Plugin<NetSection, NetChangeData> = {
  ...sectionSpec(manifest),

  normalize: normalizeNet,

  async read(ctx, desired) {
    const named = desired.interfaces ?? {};
    const names = Object.keys(named);
    if (!names.length) return { interfaces: {} };
    const withRoutes = Object.values(named).some(
      (s) => Object.keys(s.routes ?? {}).length > 0 || (s.take_over ?? []).length > 0,
    );
    const host = await readHost(ctx.settings, withRoutes);
    const interfaces: Record<string, IfaceState> = {};
    for (const n of names.sort()) {
      const l = host.links.get(n);
      if (!l) continue;
      interfaces[n] = toIface(l, host, named[n]);
      // take_over: the links that hold nothing any more (the others still have to hand over)
      const to = named[n].take_over;
      if (to) interfaces[n].take_over = to.filter((f) => !heldBy(host, f).length);
    }
    return { interfaces };
  },

  plan: planInterface,

  async apply(ctx, changes) {
    assertApplyContext(ctx);
    const results = new Map<Change<NetChangeData>, ChangeResult>();
    const data = (c: Change<NetChangeData>) => c.data!;
    // veth pairs declared from both ends, and deletes of links already gone: look at the links once
    let links: Map<string, RawLink> | undefined;
    if (changes.some((c) => data(c).veth || data(c).deleteLink)) {
      const out = await ip(ctx.settings, ['-j', '-d', 'link', 'show']);
      links = new Map((JSON.parse(out.stdout || '[]') as RawLink[]).map((l) => [l.ifname, l]));
    }
    // take-over: what the link holds is read now, just before it moves
    const host = changes.some((c) => data(c).takeOver) ? await readHost(ctx.settings, true) : undefined;
    const todo: { c: Change<NetChangeData>; cmds: string[][] }[] = [];
    for (const c of changes) {
      const d = data(c);
      if (d.takeOver && host) {
        todo.push({ c, cmds: takeOverCmds(host, d.ifname, d.takeOver) });
        continue;
      }
      let cmds = d.cmds;
      if (d.veth && links) {
        const l = links.get(d.ifname);
        if (l && kindOf(l) === 'veth' && l.link === d.veth.peer) cmds = cmds.slice(1);
        else {
          links.set(d.ifname, { ifname: d.ifname, link: d.veth.peer, linkinfo: { info_kind: 'veth' } });
          links.set(d.veth.peer, { ifname: d.veth.peer, link: d.ifname, linkinfo: { info_kind: 'veth' } });
        }
      }
      if (d.deleteLink && links) {
        const l = links.get(d.ifname);
        if (!l) cmds = [];
        else {
          links.delete(d.ifname);
          if (kindOf(l) === 'veth' && l.link) links.delete(l.link);
        }
      }
      todo.push({ c, cmds });
    }
    // one `ip -batch` for the whole ready batch (the core hands over only changes whose
    // dependencies are done); on a failure, the changes before it are done, the failed one is
    // reported, and the rest run in a new batch
    let pending = addressDeletesFirst(todo);
    while (pending.length) {
      const lines: string[] = [];
      const owner: number[] = [];
      pending.forEach((t, i) =>
        t.cmds.forEach((cmd) => {
          lines.push(cmd.join(' '));
          owner.push(i);
        }),
      );
      if (!lines.length) {
        for (const t of pending) results.set(t.c, { address: t.c.address, status: 'ok' });
        break;
      }
      try {
        await ipMutate(ctx, ['-batch', '-'], lines.join('\n') + '\n');
        for (const t of pending) results.set(t.c, { address: t.c.address, status: 'ok' });
        break;
      } catch (err) {
        const m = err instanceof ExecFailure ? /Command failed -:(\d+)/.exec(err.stderr) : null;
        if (!m || !(err instanceof ExecFailure)) {
          for (const t of pending) results.set(t.c, { address: t.c.address, status: 'failed', error: toOpdError(err) });
          break;
        }
        const bad = owner[Number(m[1]) - 1] ?? 0;
        pending.slice(0, bad).forEach((t) => results.set(t.c, { address: t.c.address, status: 'ok' }));
        const culprit = pending[bad];
        results.set(culprit.c, { address: culprit.c.address, status: 'failed', error: ipError(err.stderr, culprit.c) });
        pending = pending.slice(bad + 1);
      }
    }
    return changes.map(
      (c) =>
        results.get(c) ?? {
          address: c.address,
          status: 'failed',
          error: new OpdError('bug', `net: no result for ${c.address}`),
        },
    );
  },

  edges(desired) {
    const edges: Edge[] = [];
    const ifs = desired.interfaces ?? {};
    for (const [n, spec] of Object.entries(ifs)) {
      const from = `net/interfaces/${n}`;
      if (typeof spec.master === 'string' && spec.master in ifs)
        edges.push({ from, to: `net/interfaces/${spec.master}`, kind: 'bridge-port' });
      if (spec.kind === 'ovs') edges.push({ from, to: 'ovs', kind: 'ovs-interface' });
      if (spec.kind === 'veth' && typeof spec.peer === 'string' && spec.peer in ifs) {
        const p = ifs[spec.peer];
        const mutual = p.kind === 'veth' && p.peer === n;
        // the end with the smaller name creates a mutually declared pair; a peer that is only named follows its creator
        if (!mutual) edges.push({ from: `net/interfaces/${spec.peer}`, to: from, kind: 'veth-peer' });
        else if (spec.peer < n) edges.push({ from, to: `net/interfaces/${spec.peer}`, kind: 'veth-peer' });
      }
    }
    return edges;
  },

  async show(ctx, opts) {
    const host = await readHost(ctx.settings, true);
    const interfaces: Record<string, IfaceState> = {};
    for (const [n, l] of [...host.links].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (n === 'lo' && !opts.all) continue;
      const i = toIface(l, host, undefined, { show: true });
      if (!['bridge', 'veth', 'dummy', 'ovs', 'device'].includes(String(i.kind))) i.kind = 'device';
      if (i.kind !== 'veth') delete i.peer;
      if (i.master === null) delete i.master;
      if (isObj(i.addresses) && !Object.keys(i.addresses).length) delete i.addresses;
      if (isObj(i.routes) && !Object.keys(i.routes).length) delete i.routes;
      interfaces[n] = i;
    }
    return { interfaces };
  },

  async watch(ctx, onDrift) {
    const ns = netnsOf(ctx.settings);
    return spawnLines(
      'ip',
      [...(ns ? ['-n', ns] : []), 'monitor', 'link', 'address', 'route'],
      () => onDrift(),
      ctx.log,
    );
  },

  async doctor(ctx) {
    const ns = netnsOf(ctx.settings);
    try {
      const host = await readHost(ctx.settings, false);
      return [
        {
          name: 'net: iproute2',
          ok: true,
          detail: `${host.links.size} links${ns ? ` in network namespace ${ns}` : ''}`,
        },
      ];
    } catch (err) {
      const e = toOpdError(err);
      return [{ name: 'net: iproute2', ok: false, detail: e.message, hint: e.hint }];
    }
  },
};

export default plugin;

/**
 * Removing a subnet's primary address makes the kernel drop its secondary addresses: an address
 * added before the old primary goes (a rollback or revert swapping two addresses of one subnet)
 * would vanish with it. So an interface's address deletions of a batch run before its address
 * additions (a deletion moves forward only past changes it does not depend on).
 */
function addressDeletesFirst<T extends { c: Change<NetChangeData>; cmds: string[][] }>(todo: T[]): T[] {
  const isAddr = (t: T, verb: string) => t.cmds.length > 0 && t.cmds.every((c) => c[0] === 'addr' && c[1] === verb);
  const ifOf = (t: T) => t.c.data!.ifname;
  const out: T[] = [];
  const moved = new Set<T>();
  todo.forEach((t, i) => {
    if (moved.has(t)) return;
    if (isAddr(t, 'add')) {
      for (const later of todo.slice(i + 1)) {
        if (moved.has(later) || !isAddr(later, 'del') || ifOf(later) !== ifOf(t)) continue;
        const pendingDeps = (later.c.after ?? []).some((a) => todo.some((x) => x.c.address === a && !out.includes(x)));
        if (pendingDeps) continue;
        out.push(later);
        moved.add(later);
      }
    }
    out.push(t);
  });
  return out;
}
