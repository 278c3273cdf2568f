/**
 * The etcd side of fleet mode: connecting (endpoints, credentials) and the operator's view of
 * the store (fragments, hosts, per-host copies). Errors become OpdErrors with a hint.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import { OpdError } from '../core/errors.js';
import { DESIRED, ENROLLED, FRAGMENTS, HOSTS, desiredKey, desiredPrefix, enrolledKey, isName } from './keys.js';
import { fragmentOrder, selects, type Fragment, type HostInfo } from './merge.js';
import { TUNABLES } from '../core/tunables.js';

/** Unary calls give up after this long (watch streams have no deadline). */
export const CALL_DEADLINE_MS = TUNABLES.etcdCallMs;

export interface EtcdAccess {
  endpoints: string[];
  user?: string;
  password?: string;
  /** TLS material (PEM), read when the access is built: a file that cannot be read fails early. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

function readPem(file: string, flag: string): Buffer {
  try {
    const b = readFileSync(file);
    if (!/-----BEGIN [A-Z ]+-----/.test(b.toString('latin1'))) throw new Error('not a PEM file (no -----BEGIN line)');
    return b;
  } catch (err) {
    throw new OpdError('usage', `cannot use ${flag} ${file}: ${(err as Error).message}`, {
      hint: `give ${flag} a readable PEM file`,
    });
  }
}

/** TLS files from --etcd-ca/--etcd-cert/--etcd-key or OPD_ETCD_CA/OPD_ETCD_CERT/OPD_ETCD_KEY. */
function tlsFrom(endpoints: string[], o: Record<string, unknown>): EtcdAccess['tls'] {
  const ca = (o.etcdCa as string | undefined) ?? process.env.OPD_ETCD_CA;
  const cert = (o.etcdCert as string | undefined) ?? process.env.OPD_ETCD_CERT;
  const key = (o.etcdKey as string | undefined) ?? process.env.OPD_ETCD_KEY;
  if (!ca && !cert && !key) return undefined;
  if (!!cert !== !!key)
    throw new OpdError('usage', '--etcd-cert and --etcd-key go together', {
      hint: 'give both the client certificate and its key, or neither',
    });
  const plain = endpoints.filter((e) => !e.startsWith('https://'));
  if (plain.length)
    throw new OpdError(
      'usage',
      `TLS options given, but these etcd endpoints are not https:// URLs: ${plain.join(', ')}`,
      { hint: 'write the endpoints as https://HOST:2379' },
    );
  return {
    ...(ca ? { ca: readPem(ca, '--etcd-ca') } : {}),
    ...(cert ? { cert: readPem(cert, '--etcd-cert') } : {}),
    ...(key ? { key: readPem(key, '--etcd-key') } : {}),
  };
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
      throw new OpdError('permission', `cannot read the etcd password file ${pf}: ${(err as Error).message}`, {
        hint: 'give --etcd-password-file a readable file',
      });
    }
  }
  if (user && password === undefined)
    throw new OpdError('usage', `--etcd-user ${user} needs --etcd-password-file (or OPD_ETCD_PASSWORD_FILE)`);
  const tls = tlsFrom(endpoints, o);
  return { endpoints, ...(user ? { user, password } : {}), ...(tls ? { tls } : {}) };
}

let ipServernameQuiet = false;
/**
 * gRPC sets the TLS server name to the endpoint's host even when it is an IP address, and Node
 * warns about that (DEP0123) on stderr at every connection. Harmless here (the certificate's IP
 * SAN is checked), so that one warning is dropped.
 */
function quietIpServername(): void {
  if (ipServernameQuiet) return;
  ipServernameQuiet = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const code = args.find(
      (x) => x === 'DEP0123' || (typeof x === 'object' && x !== null && (x as { code?: string }).code === 'DEP0123'),
    );
    if (code === undefined) emit(...args);
  }) as typeof process.emitWarning;
}

export function connect(a: EtcdAccess): Etcd3 {
  if (a.tls || a.endpoints.some((e) => e.startsWith('https://'))) quietIpServername();
  const opts: IOptions = {
    hosts: a.endpoints,
    dialTimeout: TUNABLES.etcdDialMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
    ...(a.user ? { auth: { username: a.user, password: a.password ?? '' } } : {}),
    ...(a.tls
      ? {
          // no CA: gRPC's createSsl() uses the system's roots
          credentials: {
            rootCertificate: a.tls.ca,
            ...(a.tls.cert ? { certChain: a.tls.cert, privateKey: a.tls.key } : {}),
          } as IOptions['credentials'],
        }
      : {}),
  };
  return new Etcd3(opts);
}

/** An etcd failure as an OpdError: refused (permission) or unreachable. */
export function etcdError(err: unknown, what: string): OpdError {
  if (err instanceof OpdError) return err;
  const e = err as Error;
  const name = e?.constructor?.name ?? '';
  // gRPC appends a timestamp and an empty "Resolution note" to connection errors
  const msg = `${what}: ${(e?.message ?? String(err))
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/, '')
    .replace(/\.?\s*Resolution note:\s*$/s, '')
    .trim()}`;
  if (
    /alert (bad certificate|certificate required|unknown ca)|CERTIFICATE_VERIFY_FAILED|unable to (get|verify)|self[- ]signed|wrong version number|Hostname\/IP does not match/i.test(
      msg,
    )
  )
    return new OpdError('permission', msg, {
      hint: "the TLS handshake with etcd failed: give --etcd-ca the CA that signed etcd's certificate, and --etcd-cert/--etcd-key a client certificate etcd trusts (its --trusted-ca-file)",
    });
  if (/PermissionDenied|Authentication|InvalidAuthToken|Unauthenticated/i.test(name + ' ' + msg))
    return new OpdError('permission', msg, {
      hint: 'these etcd credentials may not do this (see `opd fleet enroll`); check --etcd-user/--etcd-password-file',
    });
  return new OpdError('backend-unavailable', msg, {
    hint: 'is etcd reachable at --etcd / OPD_ETCD? (`etcdctl endpoint health`)',
  });
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
 * Every host the store knows, with the labels that select its fragments. An enrolled host
 * (`opd fleet enroll NAME --label k=v`) is selected by the labels fixed at enrollment only: they
 * live under /opd/enrolled/, which the host's credentials cannot write. What its daemon announces
 * (`--label`, /opd/hosts/NAME/labels, writable by the host) is kept in `announced` for the status
 * and never selects. A host that is not enrolled (a fleet without etcd auth, where every client
 * may write anything anyway) is selected by the labels its daemon announces.
 */
export async function readHosts(c: Etcd3): Promise<HostInfo[]> {
  const announced = new Map<string, Record<string, string>>();
  for (const [k, v] of await prefixJSON<Record<string, string>>(c, HOSTS)) {
    const [host, leaf] = k.split('/');
    if (!isName(host)) continue;
    if (leaf === 'labels' && isLabels(v)) announced.set(host, v);
    else if (!announced.has(host)) announced.set(host, {});
  }
  const enrolled = new Map<string, Record<string, string>>();
  for (const [host, v] of await prefixJSON<{ labels?: Record<string, string> }>(c, ENROLLED))
    if (isName(host)) enrolled.set(host, isLabels(v?.labels) ? v.labels : {});
  const names = [...new Set([...announced.keys(), ...enrolled.keys()])].sort();
  return names.map((host) => {
    const ann = announced.get(host);
    const enr = enrolled.get(host);
    return {
      host,
      labels: sortLabels(enr ?? ann ?? {}),
      enrolled: enr !== undefined,
      ...(ann && Object.keys(ann).length ? { announced: sortLabels(ann) } : {}),
    };
  });
}

function isLabels(v: unknown): v is Record<string, string> {
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

function sortLabels(l: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The copy of a fragment a host gets: the record without the rollout's host list. */
export function copyText(f: Fragment): string {
  const { only_hosts: _o, ...copy } = f;
  return JSON.stringify(copy);
}

/** The fragments that select `h` (in merge order): what its copies must be. */
export function fragmentsFor(frs: Fragment[], h: HostInfo): Fragment[] {
  return frs.filter((f) => selects(f, h)).sort(fragmentOrder);
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
    for (const f of fragmentsFor(frs, h)) {
      const key = desiredKey(h.host, f.id);
      want.add(key);
      const text = copyText(f);
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

/**
 * One host's side of `materialize`, run by its own daemon where the store lets it read the
 * fragments (a fleet without etcd auth, where any client may write anything anyway): the copies
 * of the fragments that select it, by its enrolled labels when it is enrolled, else by the
 * labels it announces. With etcd auth a host's credentials may not read /opd/fragments/ nor
 * write /opd/desired/ (etcd refuses: PermissionDenied), and its copies are written by the
 * operator's commands (`put`, `enroll`, `relabel`, `sync`). Returns whether a copy changed.
 */
export async function materializeHost(c: Etcd3, host: string, announced: Record<string, string>): Promise<boolean> {
  const frs = await readFragments(c);
  const enr = await getJSON<{ labels?: Record<string, string> }>(c, enrolledKey(host));
  const h: HostInfo = enr
    ? { host, labels: isLabels(enr.labels) ? sortLabels(enr.labels) : {}, enrolled: true }
    : { host, labels: sortLabels(announced) };
  const existing = await c.getAll().prefix(desiredPrefix(host)).strings();
  let changed = false;
  const want = new Set<string>();
  for (const f of fragmentsFor(frs, h)) {
    const key = desiredKey(host, f.id);
    want.add(key);
    const text = copyText(f);
    if (existing[key] === text) continue;
    await c.put(key).value(text);
    changed = true;
  }
  for (const key of Object.keys(existing))
    if (!want.has(key)) {
      await c.delete().key(key);
      changed = true;
    }
  return changed;
}
