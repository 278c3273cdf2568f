/**
 * dns: the host's resolver (op-dbus's dnsresolver): name servers, search domains, options.
 * Backend detected per read: when /etc/resolv.conf is a symlink into /run/systemd/resolve/ the
 * host uses systemd-resolved, and opd writes a resolved drop-in
 * (/etc/systemd/resolved.conf.d/90-opd.conf) and asks systemd over D-Bus to restart resolved
 * (not under --root); otherwise opd writes /etc/resolv.conf itself, keeping the lines it does
 * not manage. node:fs only for reads.
 */
import { adoptRenamed, itemsToCollection } from '../../core/shorthand.js';
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import { lstatSync, readlinkSync } from 'node:fs';
import type { Change, DoctorCheck, Obj, Plugin, ResourceDiff, Settings } from '../../core/plugin.js';
import { applyEach, resourceChange } from '../../core/plugin.js';
import type { DnsDoc, Resolver } from './section.gen.js';
import { toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { putFile, readText, rootOf } from '../../core/hostfs.js';
import { callMutate, callRead } from '../../dbus.js';

/**
 * The section's types, generated from schema/dns.schema.json (npm run gen:types); a read also
 * reports the backend it detected (`resolved` among them).
 */
export type ResolverSpec = Omit<Resolver, 'backend'> & { backend?: Resolver['backend'] | Backend };
export type DnsSection = Omit<DnsDoc, 'resolvers'> & { resolvers?: Record<string, ResolverSpec> } & Obj;

export const RESOLV_CONF = '/etc/resolv.conf';
export const RESOLVED_DROPIN = '/etc/systemd/resolved.conf.d/90-opd.conf';

export type Backend = 'resolv.conf' | 'resolved';

/** What the host uses: resolved when /etc/resolv.conf (under the root) links into systemd's resolve dir. */
export function detectBackend(settings: Settings): { backend: Backend; why: string } {
  const p = rootOf(settings) + RESOLV_CONF;
  try {
    if (lstatSync(p).isSymbolicLink()) {
      const target = readlinkSync(p);
      if (/(^|\/)run\/systemd\/resolve\//.test(target))
        return { backend: 'resolved', why: `${RESOLV_CONF} → ${target} (systemd-resolved)` };
      return { backend: 'resolv.conf', why: `${RESOLV_CONF} → ${target} (not systemd-resolved's)` };
    }
    return { backend: 'resolv.conf', why: `${RESOLV_CONF} is a file` };
  } catch {
    return { backend: 'resolv.conf', why: `${RESOLV_CONF} does not exist (opd creates it)` };
  }
}

/** resolv.conf text → its nameserver/search/options (the last search or domain line wins, as in glibc). */
export function parseResolvConf(text: string): Required<Pick<ResolverSpec, 'servers' | 'search' | 'options'>> {
  const out = { servers: [] as string[], search: [] as string[], options: [] as string[] };
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (!l || l.startsWith('#') || l.startsWith(';')) continue;
    const [kw, ...rest] = l.split(/\s+/);
    if (kw === 'nameserver' && rest[0]) out.servers.push(rest[0]);
    else if (kw === 'search' || kw === 'domain') out.search = rest;
    else if (kw === 'options') out.options.push(...rest);
  }
  return out;
}

/** The new resolv.conf: lines for what the document names replace the old ones; the rest stays. */
export function renderResolvConf(old: string, name: string, want: ResolverSpec): string {
  const managed = new Set<string>();
  if (want.servers) managed.add('nameserver');
  if (want.search) managed.add('search').add('domain');
  if (want.options) managed.add('options');
  const kept = old
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('# managed by opd'))
    .filter((l) => !managed.has(l.trim().split(/\s+/)[0]));
  const lines = [
    `# managed by opd (dns/resolvers/${name}): nameserver, search and options lines the document names`,
    ...kept,
  ];
  if (want.search?.length) lines.push(`search ${want.search.join(' ')}`);
  if (want.options?.length) lines.push(`options ${want.options.join(' ')}`);
  for (const s of want.servers ?? []) lines.push(`nameserver ${s}`);
  return lines.join('\n') + '\n';
}

/** opd's resolved drop-in ↔ servers/search. */
export function parseDropin(text: string | undefined): Pick<ResolverSpec, 'servers' | 'search'> | undefined {
  if (text === undefined) return undefined;
  const out: { servers: string[]; search: string[] } = { servers: [], search: [] };
  for (const l of text.split('\n')) {
    const m = /^\s*(DNS|Domains)\s*=\s*(.*)$/.exec(l);
    if (!m) continue;
    const vals = m[2].trim() ? m[2].trim().split(/\s+/) : [];
    if (m[1] === 'DNS') out.servers = vals;
    else out.search = vals;
  }
  return out;
}

export function renderDropin(
  name: string,
  want: ResolverSpec,
  cur: Pick<ResolverSpec, 'servers' | 'search'> | undefined,
): string {
  const servers = want.servers ?? cur?.servers ?? [];
  const search = want.search ?? cur?.search ?? [];
  return `# managed by opd (dns/resolvers/${name})\n[Resolve]\nDNS=${servers.join(' ')}\nDomains=${search.join(' ')}\n`;
}

interface DnsData {
  name: string;
  want: ResolverSpec;
}

function list(v: unknown): string {
  return Array.isArray(v) && v.length ? v.join(' ') : '(none)';
}

/** options under systemd-resolved: resolved has none (a fault, so the plan shows it as a blocker). */
export function dnsFaults(current: DnsSection, desired: DnsSection): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, want] of Object.entries(desired.resolvers ?? {})) {
    const detected = current.resolvers?.[name]?.backend;
    if (want.backend !== 'resolv.conf' && detected === 'resolved' && want.options?.length)
      out[`dns/resolvers/${name}`] =
        `this host uses systemd-resolved (${RESOLV_CONF} is its stub), which has no resolv.conf options (${want.options.join(' ')}): remove options, or set backend: resolv.conf to replace the stub symlink with a file`;
  }
  return out;
}

export function planResolver(d: ResourceDiff): Change<DnsData>[] {
  const want = (d.desired ?? {}) as ResolverSpec;
  const cur = (d.current ?? {}) as ResolverSpec;
  const parts: string[] = [];
  if (want.backend === 'resolv.conf' && cur.backend === 'resolved')
    parts.push(`replace systemd-resolved's stub symlink ${RESOLV_CONF} with a file`);
  for (const k of ['servers', 'search', 'options'] as const)
    if (want[k] !== undefined && JSON.stringify(want[k]) !== JSON.stringify(cur[k] ?? []))
      parts.push(`${k} ${list(cur[k])} → ${list(want[k])}`);
  const fault = d.faults?.[d.address];
  if (!parts.length && !fault) return [];
  const change = resourceChange<DnsData>(
    d,
    d.action === 'create' ? 'create' : 'update',
    parts.join(', ') || 'options',
    {
      name: d.name,
      want,
    },
  );
  if (fault) change.blocker = fault;
  return [change];
}

const applyResolver = applyEach<DnsData>(async (ctx, c) => {
  const root = rootOf(ctx.settings);
  const d = c.data!;
  const backend = d.want.backend === 'resolv.conf' ? 'resolv.conf' : detectBackend(ctx.settings).backend;
  if (backend === 'resolv.conf') {
    await putFile(ctx, RESOLV_CONF, renderResolvConf(readText(root + RESOLV_CONF) ?? '', d.name, d.want));
    return;
  }
  await putFile(ctx, RESOLVED_DROPIN, renderDropin(d.name, d.want, parseDropin(readText(root + RESOLVED_DROPIN))));
  if (root) return; // a sandbox: the host's resolved is not ours to restart
  await callMutate(ctx, {
    destination: 'org.freedesktop.systemd1',
    path: '/org/freedesktop/systemd1',
    interface: 'org.freedesktop.systemd1.Manager',
    member: 'TryRestartUnit',
    signature: 'ss',
    body: ['systemd-resolved.service', 'replace'],
  });
});

/** op-dbus's `{version, items: [{id, mode, servers, search, options}]}` → `resolvers`. */
function resolverItem(it: unknown, i: number): [string, Obj] {
  const id = isObj(it) && typeof it.id === 'string' ? it.id : `item${i}`;
  const { id: _id, ...spec } = isObj(it) ? it : { value: it };
  if (spec.mode === 'enforce') delete spec.mode;
  return [id, spec];
}

const plugin: Plugin<DnsSection, DnsData> = {
  ...sectionSpec(manifest),
  // op-dbus's section name `dnsresolver` (some op-dbus versions register the plugin as `dns`) → `dns`
  adopt: (plugins, ctx) => adoptRenamed(plugins, 'dnsresolver', 'dns', ctx),
  async read(ctx, desired) {
    const root = rootOf(ctx.settings);
    const { backend } = detectBackend(ctx.settings);
    const resolvers: Record<string, ResolverSpec> = {};
    for (const [name, want] of Object.entries(desired.resolvers ?? {})) {
      // a resolver that must be a plain resolv.conf reads as one only once it is one
      const eff = want.backend === 'resolv.conf' ? 'resolv.conf' : backend;
      if (eff === 'resolved') {
        const cur = parseDropin(readText(root + RESOLVED_DROPIN));
        resolvers[name] = { backend, ...(cur ?? {}) };
      } else {
        const text = readText(root + RESOLV_CONF);
        if (text !== undefined || backend === 'resolved')
          resolvers[name] = { backend, ...parseResolvConf(backend === 'resolved' ? '' : (text ?? '')) };
      }
    }
    return { resolvers };
  },
  normalize(raw, ctx) {
    if (!isObj(raw)) return raw;
    const section = itemsToCollection(raw, 'dns', 'resolvers', ctx, resolverItem);
    if (!isObj(section.resolvers)) return section;
    const resolvers: Obj = {};
    for (const [n, r] of Object.entries(section.resolvers)) {
      if (isObj(r) && r.backend === 'auto') {
        const { backend: _b, ...rest } = r;
        resolvers[n] = rest;
      } else resolvers[n] = r;
    }
    return { ...section, resolvers };
  },
  faults: dnsFaults,
  plan: planResolver,
  apply: applyResolver,
  async doctor(ctx) {
    const { backend, why } = detectBackend(ctx.settings);
    const checks: DoctorCheck[] = [{ name: 'dns: backend', ok: true, detail: `${backend}: ${why}` }];
    if (backend === 'resolved' && !rootOf(ctx.settings)) {
      try {
        const [has] = await callRead(ctx.settings, {
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'NameHasOwner',
          signature: 's',
          body: ['org.freedesktop.resolve1'],
        });
        checks.push({
          name: 'dns: systemd-resolved',
          ok: has === true,
          detail: has
            ? 'org.freedesktop.resolve1 is on the system bus'
            : 'org.freedesktop.resolve1 is not on the system bus',
          hint: has ? undefined : 'start systemd-resolved, or set backend: resolv.conf',
        });
      } catch (e) {
        const err = toOpdError(e);
        checks.push({ name: 'dns: systemd-resolved', ok: false, detail: err.message, hint: err.hint });
      }
    }
    return checks;
  },
};

export default plugin;
