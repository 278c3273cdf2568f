/**
 * The etcd side of fleet mode: connecting (endpoints, credentials) and the operator's view of
 * the store (fragments, hosts, per-host copies). Errors become OpdErrors with a hint.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import { OpdError } from '../core/errors.js';
import { DESIRED, ENROLLED, FRAGMENTS, HOSTS, desiredKey, desiredPrefix } from './keys.js';
import { fragmentOrder, mergeFragments, selects, type Fragment, type HostInfo, type Merged } from './merge.js';

/** Unary calls give up after this long (watch streams have no deadline). */
export const CALL_DEADLINE_MS = 5_000;

export interface EtcdAccess {
  endpoints: string[];
  user?: string;
  password?: string;
}

/** Credentials from --etcd-user / --etcd-password-file or OPD_ETCD_USER / OPD_ETCD_PASSWORD_FILE. */
export function accessFrom(endpoints: string[], o: Record<string, unknown>): EtcdAccess {
  const user = (o.etcdUser as string | undefined) ?? process.env.OPD_ETCD_USER;
  const pf = (o.etcdPasswordFile as string | undefined) ?? process.env.OPD_ETCD_PASSWORD_FILE;
  let password: string | undefined;
  if (pf) {
    try {
      password = readFileSync(pf, 'utf8').trim();
    } catch (err) {
      throw new OpdError('permission', `cannot read the etcd password file ${pf}: ${(err as Error).message}`, { hint: 'give --etcd-password-file a readable file' });
    }
  }
  if (user && password === undefined) throw new OpdError('usage', `--etcd-user ${user} needs --etcd-password-file (or OPD_ETCD_PASSWORD_FILE)`);
  return { endpoints, ...(user ? { user, password } : {}) };
}

export function connect(a: EtcdAccess): Etcd3 {
  const opts: IOptions = {
    hosts: a.endpoints,
    dialTimeout: 3_000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
    ...(a.user ? { auth: { username: a.user, password: a.password ?? '' } } : {}),
  };
  return new Etcd3(opts);
}

/** An etcd failure as an OpdError: refused (permission) or unreachable. */
export function etcdError(err: unknown, what: string): OpdError {
  if (err instanceof OpdError) return err;
  const e = err as Error;
  const name = e?.constructor?.name ?? '';
  const msg = `${what}: ${e?.message ?? String(err)}`;
  if (/PermissionDenied|Authentication|InvalidAuthToken|Unauthenticated/i.test(name + ' ' + msg))
    return new OpdError('permission', msg, { hint: 'these etcd credentials may not do this (see `opd fleet enroll`); check --etcd-user/--etcd-password-file' });
  return new OpdError('backend-unavailable', msg, { hint: 'is etcd reachable at --etcd / OPD_ETCD? (`etcdctl endpoint health`)' });
}

export async function getJSON<T>(c: Etcd3, key: string): Promise<T | undefined> {
  const s = await c.get(key).string();
  return s === null ? undefined : (JSON.parse(s) as T);
}

export async function prefixJSON<T>(c: Etcd3, prefix: string): Promise<Map<string, T>> {
  const all = await c.getAll().prefix(prefix).strings();
  const out = new Map<string, T>();
  for (const k of Object.keys(all).sort()) {
    try {
      out.set(k.slice(prefix.length), JSON.parse(all[k]) as T);
    } catch {
      /* not ours */
    }
  }
  return out;
}

export async function readFragments(c: Etcd3): Promise<Fragment[]> {
  return [...(await prefixJSON<Fragment>(c, FRAGMENTS)).values()].sort(fragmentOrder);
}

/**
 * Every host the store knows: enrolled by the operator (those labels win) or announced by a
 * daemon (its --label options).
 */
export async function readHosts(c: Etcd3): Promise<HostInfo[]> {
  const hosts = new Map<string, Record<string, string>>();
  for (const [k, v] of await prefixJSON<Record<string, string>>(c, HOSTS)) {
    const [host, leaf] = k.split('/');
    if (leaf === 'labels') hosts.set(host, v);
    else if (!hosts.has(host)) hosts.set(host, {});
  }
  for (const [host, v] of await prefixJSON<{ labels?: Record<string, string> }>(c, ENROLLED)) hosts.set(host, { ...(hosts.get(host) ?? {}), ...(v.labels ?? {}) });
  return [...hosts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([host, labels]) => ({ host, labels }));
}

export function mergedFor(h: HostInfo, fragments: Fragment[]): Merged {
  return mergeFragments(fragments.filter((f) => selects(f, h)));
}

/**
 * Write the per-host copies (/opd/desired/<host>/<id>) so that each host has exactly the
 * fragments that select it; returns the hosts whose copies changed.
 */
export async function materialize(c: Etcd3, fragments?: Fragment[], hosts?: HostInfo[]): Promise<string[]> {
  const frs = fragments ?? (await readFragments(c));
  const hs = hosts ?? (await readHosts(c));
  const existing = await c.getAll().prefix(DESIRED).strings();
  const changed = new Set<string>();
  const want = new Set<string>();
  for (const h of hs) {
    for (const f of frs) {
      if (!selects(f, h)) continue;
      const key = desiredKey(h.host, f.id);
      want.add(key);
      const { only_hosts: _o, ...copy } = f;
      const text = JSON.stringify(copy);
      if (existing[key] === text) continue;
      await c.put(key).value(text);
      changed.add(h.host);
    }
  }
  const known = new Set(hs.map((h) => h.host));
  for (const key of Object.keys(existing)) {
    if (want.has(key)) continue;
    const host = key.slice(DESIRED.length).split('/')[0];
    if (!known.has(host) && !key.startsWith(desiredPrefix(host))) continue;
    await c.delete().key(key);
    changed.add(host);
  }
  return [...changed].sort();
}
