/**
 * libvirt: networks, storage pools (dir) with volumes, and domains (spec or raw XML) through
 * virsh. Reads: ONE virsh process per read (a stdin batch of list/dumpxml commands for what
 * the document names); show() uses three. Apply: one virsh process per step.
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import type { Edge, Obj, Plugin } from '../../core/plugin.js';
import { applyEach } from '../../core/plugin.js';
import { toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { spawnLines } from '../../exec.js';
import { uri, virsh } from './virsh.js';
import { planLibvirt, fmtBytes, type LibvirtChangeData } from './plan.js';
import { normalizeSection } from './normalize.js';
import { readSection, type LibvirtSection } from './read.js';
import { runStep, virtType } from './apply.js';

export type { LibvirtSection };

/* ----------------------------------------------------------------- plugin */

const plugin: Plugin<LibvirtSection, LibvirtChangeData> = {
  ...sectionSpec(manifest),

  normalize: normalizeSection,

  async read(ctx, desired) {
    return readSection(ctx.settings, desired ?? {}, false);
  },

  plan: planLibvirt,

  apply: applyEach(async (ctx, c) => {
    for (const s of c.data!.steps) await runStep(ctx, s);
  }),

  edges(desired) {
    const edges: Edge[] = [];
    for (const [n, spec] of Object.entries(desired.domains ?? {})) {
      if (!isObj(spec)) continue;
      const from = `libvirt/domains/${n}`;
      for (const i of Array.isArray(spec.interfaces) ? spec.interfaces : []) {
        if (!isObj(i)) continue;
        if (typeof i.network === 'string') edges.push({ from, to: `libvirt/networks/${i.network}`, kind: 'network' });
        if (typeof i.ovs_bridge === 'string')
          edges.push({ from, to: `ovs/bridges/${i.ovs_bridge}`, kind: 'ovs-bridge' });
      }
      for (const d of Object.values((isObj(spec.disks) ? spec.disks : {}) as Record<string, Obj>))
        if (isObj(d) && typeof d.pool === 'string')
          edges.push({ from, to: `libvirt/pools/${d.pool}`, kind: 'storage' });
      if (typeof spec.xml === 'string') {
        for (const m of spec.xml.matchAll(/<source\s[^>]*network='([^']+)'/g))
          edges.push({ from, to: `libvirt/networks/${m[1]}`, kind: 'network' });
        for (const m of spec.xml.matchAll(/<source\s[^>]*pool='([^']+)'/g))
          edges.push({ from, to: `libvirt/pools/${m[1]}`, kind: 'storage' });
      }
    }
    for (const [n, spec] of Object.entries(desired.networks ?? {}))
      if (isObj(spec) && spec.ovs === true && typeof spec.bridge === 'string')
        edges.push({ from: `libvirt/networks/${n}`, to: `ovs/bridges/${spec.bridge}`, kind: 'ovs-bridge' });
    return edges;
  },

  async show(ctx) {
    const s = await readSection(ctx.settings, {}, true);
    const domains: Record<string, Obj> = {};
    for (const [n, d] of Object.entries(s.domains ?? {})) {
      const o: Obj = { ...d };
      if (Array.isArray(o.boot) && !o.boot.length) delete o.boot;
      const disks = o.disks;
      if (isObj(disks))
        for (const [k, disk] of Object.entries(disks))
          if (isObj(disk) && disk.device === 'cdrom' && disk.file === undefined) delete disks[k];
      domains[n] = o;
    }
    const pools: Record<string, Obj> = {};
    for (const [n, p] of Object.entries(s.pools ?? {})) {
      const vols: Obj = {};
      for (const [v, vs] of Object.entries((p.volumes ?? {}) as Record<string, Obj>))
        vols[v] = { ...vs, capacity: showSize(vs.capacity as number) };
      pools[n] = p.type === 'dir' ? { ...p, volumes: vols } : { ...p, volumes: vols };
    }
    return { networks: s.networks, pools, domains };
  },

  async watch(ctx, onDrift) {
    const u = uri(ctx.settings);
    // one `virsh … event --loop` per kind; a line names the object that changed
    const events = (args: string[], collection: string, ...names: RegExp[]) =>
      spawnLines(
        'virsh',
        ['-c', u, ...args, '--loop'],
        (line) => {
          const m = names.map((re) => re.exec(line)).find(Boolean);
          onDrift(m ? `libvirt/${collection}/${m[1]}` : undefined);
        },
        ctx.log,
      );
    const streams = [
      events(['event', '--all'], 'domains', /for domain '([^']+)'/, /for domain ([^:]+):/),
      events(['net-event', '--event', 'lifecycle'], 'networks', /for network '?([^':]+)'?:/),
      events(['pool-event', '--event', 'lifecycle'], 'pools', /for storage pool '?([^':]+)'?:/),
    ];
    return { dispose: async () => void (await Promise.all(streams.map((s) => s.dispose()))) };
  },

  async doctor(ctx) {
    const u = uri(ctx.settings);
    try {
      const v = await virsh(ctx.settings, ['version']);
      const t = await virtType(ctx.settings);
      const hv = /Running hypervisor: (.*)/.exec(v.stdout)?.[1] ?? 'unknown hypervisor';
      return [
        { name: 'libvirt: connection', ok: true, detail: `${u}: ${hv}` },
        {
          name: 'libvirt: kvm',
          ok: t === 'kvm',
          detail: t === 'kvm' ? 'KVM acceleration available' : 'no KVM: domains run under TCG emulation (slow)',
          hint: t === 'kvm' ? undefined : 'check /dev/kvm exists and belongs to group kvm with mode 660',
        },
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
