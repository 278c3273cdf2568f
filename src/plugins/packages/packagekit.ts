/**
 * PackageKit backend over raw D-Bus (src/dbus.ts): CreateTransaction, then one method on the
 * transaction object, then its signals (Package, ErrorCode, Finished) until Finished.
 * One shared signal subscription per process; each transaction is awaited by its object path.
 */
import { ApplyContext, assertApplyContext, type ReadContext, type Settings } from '../../core/plugin.js';
import { TUNABLES } from './manifest.js';
import { OpdError, abortedError } from '../../core/errors.js';
import { callMutate, callRead, getAll, onSignal } from '../../dbus.js';
import type { InstallItem, InstalledPackage, PackageBackend, TxResult } from './backend.js';

export const PK = 'org.freedesktop.PackageKit';
const PK_PATH = '/org/freedesktop/PackageKit';
const TX = 'org.freedesktop.PackageKit.Transaction';

/** PkFilterEnum bits. */
export const FILTER = {
  none: 1 << 1,
  installed: 1 << 2,
  notInstalled: 1 << 3,
  newest: 1 << 16,
  arch: 1 << 18,
} as const;
/** PkTransactionFlagEnum bits. */
export const TX_FLAG = { onlyTrusted: 1 << 1, simulate: 1 << 2, allowDowngrade: 1 << 6 } as const;
/** PkInfoEnum values we look at. */
export const INFO = {
  installed: 1,
  available: 2,
  installing: 12,
  removing: 13,
  finished: 18,
  reinstalling: 19,
  downgrading: 20,
} as const;
const EXIT_SUCCESS = 1;
const EXITS = [
  'unknown',
  'success',
  'failed',
  'cancelled',
  'key-required',
  'eula-required',
  'killed',
  'media-change-required',
  'need-untrusted',
  'cancelled-priority',
  'skip-transaction',
  'repair-required',
];
/** PkErrorEnum names, by value (0 … 26). */
const ERRORS = [
  'unknown',
  'out-of-memory',
  'no-network',
  'not-supported',
  'internal-error',
  'gpg-failure',
  'package-id-invalid',
  'package-not-installed',
  'package-not-found',
  'package-already-installed',
  'package-download-failed',
  'group-not-found',
  'group-list-invalid',
  'dep-resolution-failed',
  'filter-invalid',
  'create-thread-failed',
  'transaction-error',
  'transaction-cancelled',
  'no-cache',
  'repo-not-found',
  'cannot-remove-system-package',
  'process-kill',
  'failed-initialization',
  'failed-finalise',
  'failed-config-parsing',
  'cannot-cancel',
  'cannot-get-lock',
];
const ERROR_CANNOT_GET_LOCK = 26;
const TX_TIMEOUT = TUNABLES.packageTxMs;

export interface PkPackage {
  info: number;
  id: string;
}

export interface PkResult {
  packages: PkPackage[];
  exit: number;
  error?: { code: number; details: string };
}

export interface PackageId {
  name: string;
  version: string;
  arch: string;
  data: string;
}

export function parseId(id: string): PackageId {
  const [name = '', version = '', arch = '', data = ''] = id.split(';');
  return { name, version, arch, data };
}

export function makeId(p: PackageId): string {
  return [p.name, p.version, p.arch, p.data].join(';');
}

/** Resolve output → installed packages by name (first installed id wins; sorted). */
export function installedFrom(packages: PkPackage[]): Map<string, InstalledPackage & { id: string }> {
  const m = new Map<string, InstalledPackage & { id: string }>();
  for (const p of packages) {
    if (p.info !== INFO.installed) continue;
    const id = parseId(p.id);
    if (!m.has(id.name)) m.set(id.name, { version: id.version, arch: id.arch, id: p.id });
  }
  return new Map([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ---- one shared subscription; transactions wait on their own path ----

type Waiter = (member: string, body: unknown[]) => void;
const waiters = new Map<string, Waiter>();
const subscribed = new Map<string, Promise<unknown>>();

function subscribe(settings: Settings): Promise<unknown> {
  const key = String(settings.dbusAddress ?? '');
  let p = subscribed.get(key);
  if (!p) {
    p = onSignal(settings, { interface: TX }, (m) => waiters.get(m.path)?.(m.member, m.body));
    p.catch(() => subscribed.delete(key));
    subscribed.set(key, p);
  }
  return p;
}

function pkError(what: string, r: PkResult): OpdError {
  const code = r.error?.code ?? -1;
  const name = ERRORS[code] ?? `error ${code}`;
  const details = r.error?.details?.trim() || `exit ${EXITS[r.exit] ?? r.exit}`;
  if (code === ERROR_CANNOT_GET_LOCK)
    return new OpdError('lock-busy', `PackageKit ${what}: ${name}: ${details}`, {
      hint: 'another package manager holds the lock; opd retries, else wait for it and run opd again',
    });
  return new OpdError('backend-failed', `PackageKit ${what} failed: ${name}: ${details}`, {
    hint: 'pkcon and journalctl -u packagekit show more; --packages-backend apt bypasses PackageKit on Debian',
  });
}

/** One PackageKit transaction: create it, call `member`, collect signals until Finished. */
/**
 * One PackageKit transaction. Resolve, GetPackages and RequiredBy only look (the read door,
 * `settings`); InstallPackages and RemovePackages change the host and need the ApplyContext.
 */
export async function transaction(
  via: Settings | ApplyContext,
  member: string,
  signature: string,
  body: unknown[],
): Promise<PkResult> {
  const mutating = member === 'InstallPackages' || member === 'RemovePackages' || member === 'InstallFiles';
  if (mutating) assertApplyContext(via);
  const settings = via instanceof ApplyContext ? via.settings : via;
  await subscribe(settings);
  const [path] = (await callRead(settings, {
    destination: PK,
    path: PK_PATH,
    interface: PK,
    member: 'CreateTransaction',
  })) as [string];
  const result: PkResult = { packages: [], exit: 0 };
  let timer: NodeJS.Timeout | undefined;
  const signal = via instanceof ApplyContext ? via.signal : undefined;
  let stopped: (() => void) | undefined;
  const finished = new Promise<PkResult>((resolve, reject) => {
    timer = setTimeout(
      () => reject(new OpdError('backend-busy', `PackageKit ${member} did not finish within ${TX_TIMEOUT / 1000} s`)),
      TX_TIMEOUT,
    );
    // the run stopped (or the core's call timed out): stop waiting for Finished
    stopped = () => reject(abortedError(signal, `PackageKit ${member}`));
    signal?.addEventListener('abort', stopped, { once: true });
    waiters.set(path, (sig, b) => {
      if (sig === 'Package') result.packages.push({ info: Number(b[0]), id: String(b[1]) });
      else if (sig === 'ErrorCode') result.error ??= { code: Number(b[0]), details: String(b[1]) };
      else if (sig === 'Finished') {
        result.exit = Number(b[0]);
        resolve(result);
      } else if (sig === 'Destroy' && !result.exit)
        reject(new OpdError('backend-busy', `PackageKit ${member}: the transaction went away before it finished`));
    });
  });
  try {
    const spec = { destination: PK, path, interface: TX, member, signature, body, timeout: TX_TIMEOUT };
    await (via instanceof ApplyContext ? callMutate(via, spec) : callRead(settings, spec));
    const r = await finished;
    if (r.exit !== EXIT_SUCCESS) throw pkError(member, r);
    return r;
  } finally {
    finished.catch(() => undefined);
    if (timer) clearTimeout(timer);
    if (stopped) signal?.removeEventListener('abort', stopped);
    waiters.delete(path);
  }
}

/** Whether org.freedesktop.PackageKit is on the bus or can be activated (one call). */
export async function packageKitAvailable(settings: Settings): Promise<boolean> {
  const [names] = (await callRead(settings, {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'ListActivatableNames',
  })) as [string[]];
  if (names.includes(PK)) return true;
  const [owned] = (await callRead(settings, {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'NameHasOwner',
    signature: 's',
    body: [PK],
  })) as [boolean];
  return owned;
}

export const packageKitBackend: PackageBackend = {
  name: 'packagekit',

  async query(ctx: ReadContext, names?: string[]): Promise<Map<string, InstalledPackage>> {
    if (names && !names.length) return new Map();
    const r = names
      ? await transaction(ctx.settings, 'Resolve', 'tas', [FILTER.installed, names])
      : await transaction(ctx.settings, 'GetPackages', 't', [FILTER.installed]);
    return installedFrom(r.packages);
  },

  async alsoRemoved(ctx: ReadContext, installed: Map<string, InstalledPackage>): Promise<string[]> {
    const names = [...installed.keys()];
    const ids = [...installed.values()].map((p) => p.id).filter((i): i is string => !!i);
    if (!ids.length) return [];
    const r = await transaction(ctx.settings, 'RequiredBy', 'tasb', [FILTER.installed, ids, true]);
    const set = new Set(names);
    return [...new Set(r.packages.map((p) => parseId(p.id).name))].filter((n) => !set.has(n)).sort();
  },

  async install(ctx: ApplyContext, all: InstallItem[]): Promise<TxResult> {
    const failed = new Map<string, OpdError>();
    // local .debs: one InstallFiles transaction (their trust is the document's sha256, not a repository signature)
    const files = all.filter((i) => i.file !== undefined);
    if (files.length)
      await transaction(ctx, 'InstallFiles', 'tas', [TX_FLAG.allowDowngrade, files.map((i) => i.file!)]);
    const items = all.filter((i) => i.file === undefined);
    if (!items.length) return { failed };
    const names = items.map((i) => i.name);
    const resolved = await transaction(ctx.settings, 'Resolve', 'tas', [FILTER.none, names]);
    const candidates = new Map<string, PackageId>();
    for (const p of resolved.packages) {
      const id = parseId(p.id);
      if (p.info === INFO.available && !candidates.has(id.name)) candidates.set(id.name, id);
    }
    const installed = installedFrom(resolved.packages);
    const ids: PackageId[] = [];
    for (const it of items) {
      const cand =
        candidates.get(it.name) ??
        (installed.has(it.name) ? { ...parseId(installed.get(it.name)!.id), data: '' } : undefined);
      if (!cand) {
        failed.set(
          it.name,
          new OpdError('backend-failed', `PackageKit: unable to locate package ${it.name}`, {
            address: `packages/installed/${it.name}`,
            hint: 'check the name (pkcon resolve NAME); add the repository that has it and refresh the cache (pkcon refresh)',
          }),
        );
        continue;
      }
      ids.push({ ...cand, version: it.version ?? cand.version });
    }
    // A pinned version other than the candidate: PackageKit silently installs the candidate when
    // the version does not exist, so look it up first (Resolve of a full id answers that exact
    // version when the repositories have it). One more transaction, only when pins need it.
    const pinned = ids.filter(
      (id) => id.version !== candidates.get(id.name)?.version && id.version !== installed.get(id.name)?.version,
    );
    if (pinned.length) {
      const r = await transaction(ctx.settings, 'Resolve', 'tas', [
        FILTER.none,
        pinned.map((id) => makeId({ ...id, data: '' })),
      ]);
      const have = new Set(
        r.packages.map((p) => {
          const i = parseId(p.id);
          return `${i.name};${i.version}`;
        }),
      );
      for (const id of pinned)
        if (!have.has(`${id.name};${id.version}`))
          failed.set(
            id.name,
            new OpdError('backend-failed', `PackageKit: version ${id.version} of ${id.name} is not available`, {
              address: `packages/installed/${id.name}`,
              hint: `the repositories do not have ${id.name} ${id.version} (pkcon resolve ${id.name} shows the candidate; apt-cache policy ${id.name} lists versions on Debian)`,
            }),
          );
    }
    const todo = ids.filter((id) => !failed.has(id.name));
    if (!todo.length) return { failed };
    await transaction(ctx, 'InstallPackages', 'tas', [TX_FLAG.onlyTrusted | TX_FLAG.allowDowngrade, todo.map(makeId)]);
    return { failed };
  },

  async remove(ctx: ApplyContext, installed: Map<string, InstalledPackage>, allowDeps: boolean): Promise<TxResult> {
    const ids = [...installed.values()].map((p) => p.id).filter((i): i is string => !!i);
    // note: PackageKit's apt backend removes dependents even with allow_deps false; opd checks first
    if (ids.length) await transaction(ctx, 'RemovePackages', 'tasbb', [TX_FLAG.onlyTrusted, ids, allowDeps, false]);
    return { failed: new Map() };
  },

  async describe(settings: Settings): Promise<string> {
    const p = await getAll(settings, PK, PK_PATH, PK);
    return `PackageKit ${p.VersionMajor}.${p.VersionMinor}.${p.VersionMicro} (backend ${p.BackendName})`;
  },
};
