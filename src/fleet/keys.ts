/**
 * The key layout of fleet mode in etcd. Laid out so that etcd's key-prefix permissions can
 * express "a host reads only the fragments that select it and writes only its own status":
 *
 *   /opd/fragments/<id>             the operator's fragment record (selector, order, document)
 *   /opd/enrolled/<host>            labels the operator gave a host at `opd fleet enroll`
 *   /opd/desired/<host>/<id>        per-host copy of every fragment selecting <host>   (host: read)
 *   /opd/hosts/<host>/labels        labels the daemon announces (shown, never selecting an enrolled host)
 *   /opd/hosts/<host>/status        converged, document hash, failing, drift, last run, audit head
 *   /opd/hosts/<host>/alive         lease-bound: disappears when the daemon stops renewing
 *   /opd/hosts/<host>/audit-head    {seq, hash} of the local audit trail after every run (published)
 *   /opd/witness/<host>/heads/<seq> every head the operator's copier saw          (host: read only)
 *   /opd/witness/<host>/conflicts/  a second, different hash published for a witnessed seq
 *   /opd/witness/.copier            the copier's progress (revision) and the gaps it noticed
 *
 * Copies under /opd/desired/<host>/ are written by the operator's commands (`put`, `rollout`,
 * `sync`, `enroll`, `relabel`), which read all fragments; a host's credentials never see another
 * host's copy. Without etcd auth (any client may write anything) a daemon also writes its own
 * copies, so a host that announces itself after a put takes its fragments by itself.
 */
import { OpdError } from '../core/errors.js';

export const PREFIX = '/opd/';
export const FRAGMENTS = `${PREFIX}fragments/`;
export const ENROLLED = `${PREFIX}enrolled/`;
export const DESIRED = `${PREFIX}desired/`;
export const HOSTS = `${PREFIX}hosts/`;
export const WITNESS = `${PREFIX}witness/`;
export const COPIER_STATE = `${WITNESS}.copier`;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Whether `name` is a valid host name or fragment id (keys of other shapes are not opd's). */
export const isName = (name: string): boolean => NAME.test(name);

export function checkName(kind: 'host' | 'fragment id', name: string): string {
  if (!NAME.test(name))
    throw new OpdError('usage', `invalid ${kind} ${JSON.stringify(name)}`, {
      hint: `a ${kind} is 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`,
    });
  return name;
}

export const fragmentKey = (id: string) => FRAGMENTS + id;
export const enrolledKey = (host: string) => ENROLLED + host;
export const desiredPrefix = (host: string) => `${DESIRED}${host}/`;
export const desiredKey = (host: string, id: string) => `${DESIRED}${host}/${id}`;
export const hostPrefix = (host: string) => `${HOSTS}${host}/`;
export const statusKey = (host: string) => `${HOSTS}${host}/status`;
export const aliveKey = (host: string) => `${HOSTS}${host}/alive`;
export const labelsKey = (host: string) => `${HOSTS}${host}/labels`;
export const auditHeadKey = (host: string) => `${HOSTS}${host}/audit-head`;
export const witnessPrefix = (host: string) => `${WITNESS}${host}/`;
export const witnessHeadsPrefix = (host: string) => `${WITNESS}${host}/heads/`;
export const witnessHeadKey = (host: string, seq: number) => `${WITNESS}${host}/heads/${String(seq).padStart(16, '0')}`;
export const witnessConflictPrefix = (host: string) => `${WITNESS}${host}/conflicts/`;

/** The etcd user and role `opd fleet enroll NAME` creates for a host. */
export const hostUser = (host: string) => `opd-host-${host}`;

/** Parse `k=v` labels/selectors (repeatable options), sorted by key. */
export function parseLabels(items: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items ?? []) {
    for (const part of it.split(',').filter(Boolean)) {
      const m = /^([A-Za-z0-9][A-Za-z0-9._/-]{0,62})=([A-Za-z0-9._-]{0,63})$/.exec(part.trim());
      if (!m)
        throw new OpdError('usage', `${what}: ${JSON.stringify(part)} is not k=v`, {
          hint: `write ${what} role=kvm (letters, digits, '.', '_', '-')`,
        });
      out[m[1]] = m[2];
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Endpoints from --etcd or OPD_ETCD (comma-separated URLs). */
export function parseEndpoints(v: string | undefined): string[] {
  const s = v ?? process.env.OPD_ETCD;
  if (!s)
    throw new OpdError('usage', 'no etcd endpoints', { hint: 'give --etcd http://HOST:2379[,…] or set OPD_ETCD' });
  const eps = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const e of eps)
    if (!/^https?:\/\/[^/\s]+\/?$/.test(e))
      throw new OpdError('usage', `--etcd: ${JSON.stringify(e)} is not an http(s)://host:port URL`);
  return eps;
}
