/**
 * libvirt: the steps of a change (define, start, stop, autostart, undefine…) through the mutate door of virsh.
 */

import type { ApplyContext, Settings } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { withTempFile } from '../../core/hostfs.js';
import { uri, virsh, virshMutate } from './virsh.js';
import { child, el, parseXml, setChild, toXml, type XNode } from './xml.js';
import { buildDomain, buildNetwork, buildPool, domainFromXml, patchDomain } from './model.js';
import { type Step } from './plan.js';
import { parseOrThrow } from './read.js';
import { TUNABLES } from './manifest.js';

let virtTypeCache: Map<string, string> | undefined;

/** kvm when the hypervisor offers it (domcapabilities answers for kvm), else qemu. */
export async function virtType(settings: Settings): Promise<string> {
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
  await withTempFile(ctx, 'definition.xml', toXml(x), async (f) => {
    await virshMutate(ctx, [cmd, f]);
  });
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
    const wait = (secs: number) =>
      virsh(settings, ['event', '--domain', name, '--event', 'lifecycle', '--timeout', String(secs)], {
        okCodes: [0, 1],
        timeout: secs * 1000 + TUNABLES.virshEventGraceMs,
      });
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
  if (s !== 'shut off')
    throw new OpdError('backend-busy', `domain ${name} is still ${s} after destroy`, {
      hint: 'look at /var/log/libvirt/qemu/' + name + '.log',
    });
}

/** The virsh command (before the name) of the steps that are one command on a named domain, network or pool. */
const VIRSH_ARGS = {
  'dom-start': ['start'],
  'dom-undefine': ['undefine', '--managed-save', '--snapshots-metadata', '--nvram'],
  'net-start': ['net-start'],
  'net-stop': ['net-destroy'],
  'net-undefine': ['net-undefine'],
  'pool-build': ['pool-build'],
  'pool-start': ['pool-start'],
  'pool-stop': ['pool-destroy'],
  'pool-undefine': ['pool-undefine'],
} as const;
const AUTOSTART = {
  'dom-autostart': 'autostart',
  'net-autostart': 'net-autostart',
  'pool-autostart': 'pool-autostart',
};

export async function runStep(ctx: ApplyContext, s: Step): Promise<void> {
  const st = ctx.settings;
  switch (s.op) {
    case 'dom-define': {
      const live = await dumpLive(st, ['dumpxml', '--inactive', s.name]);
      let x: XNode;
      if (s.xml !== undefined) {
        x = parseXml(s.xml);
        if (x.tag !== 'domain')
          throw new OpdError(
            'invalid-document',
            `libvirt/domains/${s.name}: xml has root <${x.tag}>, expected <domain>`,
          );
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
    case 'dom-stop':
      await stopDomain(ctx, s.name, s.timeout);
      return;
    case 'dom-start':
    case 'dom-undefine':
    case 'net-start':
    case 'net-stop':
    case 'net-undefine':
    case 'pool-build':
    case 'pool-start':
    case 'pool-stop':
    case 'pool-undefine':
      await virshMutate(ctx, [...VIRSH_ARGS[s.op], s.name]);
      return;
    case 'dom-autostart':
    case 'net-autostart':
    case 'pool-autostart':
      await virshMutate(ctx, [AUTOSTART[s.op], ...(s.on ? [] : ['--disable']), s.name]);
      return;
    case 'net-define': {
      const live = await dumpLive(st, ['net-dumpxml', '--inactive', s.name]);
      await define(ctx, 'net-define', buildNetwork(s.name, s.spec, live));
      return;
    }
    case 'pool-define': {
      const live = await dumpLive(st, ['pool-dumpxml', '--inactive', s.name]);
      await define(ctx, 'pool-define', buildPool(s.name, s.spec, live));
      return;
    }
    case 'vol-create':
      await virshMutate(ctx, [
        'vol-create-as',
        '--pool',
        s.pool,
        '--name',
        s.name,
        '--capacity',
        String(s.capacity),
        '--format',
        s.format,
      ]);
      return;
    case 'vol-resize':
      await virshMutate(ctx, [
        'vol-resize',
        '--pool',
        s.pool,
        '--vol',
        s.name,
        '--capacity',
        String(s.capacity),
        ...(s.shrink ? ['--shrink'] : []),
      ]);
      return;
    case 'vol-delete':
      await virshMutate(ctx, ['vol-delete', '--pool', s.pool, '--vol', s.name]);
      return;
  }
}
