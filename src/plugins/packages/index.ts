/**
 * packages: installed packages and exact versions, through PackageKit (D-Bus) when it answers on
 * the system bus, apt/dpkg otherwise. Reads: one query for all named packages (one Resolve or one
 * dpkg-query), plus one query for what a removal would take along when the document removes
 * something. Apply: one transaction for all removals and one for all installs.
 */
import { sectionSpec } from '../../core/schema-file.js';
import { existsSync, readFileSync, watch as fsWatch } from 'node:fs';
import { join } from 'node:path';
import type {
  ApplyContext,
  Change,
  ChangeResult,
  Edge,
  NormalizeContext,
  Obj,
  Plugin,
  Settings,
} from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { busAddress, onSignal } from '../../dbus.js';
import { BACKEND_NAMES, type BackendName, type InstalledPackage, type PackageBackend } from './backend.js';
import { aptBackend } from './apt.js';
import { PK, packageKitAvailable, packageKitBackend } from './packagekit.js';
import { planPackage, requestedBackend, type PackageChangeData } from './plan.js';
import type { PackagesDoc, Package, Repository } from './section.gen.js';
import { normalizeRepositories, readRepository, removeRepository, writeRepository } from './repos.js';
import { installArtifact, sha256OfFile, type Artifact } from '../../host/artifact.js';
import { putFile } from '../../core/hostfs.js';
import { runRead } from '../../exec.js';
import { settingOf } from '../../core/manifest.js';
import manifest, { PACKAGES_BACKEND, SOURCE_CACHE } from './manifest.js';

/** The section's type, generated from schema/packages.schema.json (npm run gen:types). */
export type PackagesSection = PackagesDoc & Obj;
/** A package as read: `required_by` names what removing it takes along (planned as destructive). */
type InstalledState = Package & { required_by?: string[] };

const BACKENDS: Record<BackendName, PackageBackend> = { packagekit: packageKitBackend, apt: aptBackend };

/** The backend the last read used (apply follows it: the document's `backend` key is not in a Change). */
const lastRead = new Map<string, PackageBackend>();

/** Detection result per bus address (one D-Bus call per process). */
const detected = new Map<string, Promise<{ name: BackendName; why: string }>>();

function detect(settings: Settings): Promise<{ name: BackendName; why: string }> {
  const key = busAddress(settings);
  let p = detected.get(key);
  if (!p) {
    p = packageKitAvailable(settings).then(
      (ok) =>
        ok
          ? { name: 'packagekit' as const, why: `org.freedesktop.PackageKit answers on ${key}` }
          : { name: 'apt' as const, why: `org.freedesktop.PackageKit is not on ${key}` },
      (err) => ({ name: 'apt' as const, why: `no system bus (${toOpdError(err).message})` }),
    );
    detected.set(key, p);
  }
  return p;
}

export async function chooseBackend(
  settings: Settings,
  section?: unknown,
): Promise<{ backend: PackageBackend; why: string }> {
  const want = requestedBackend(settingOf(settings, PACKAGES_BACKEND), section);
  if (!(BACKEND_NAMES as readonly string[]).includes(want))
    throw new OpdError('usage', `unknown package backend ${JSON.stringify(want)}`, {
      hint: `use one of ${BACKEND_NAMES.join(', ')} (--packages-backend / OPD_PACKAGES_BACKEND)`,
    });
  if (want !== 'auto') return { backend: BACKENDS[want as BackendName], why: 'chosen by setting or document' };
  const d = await detect(settings);
  return { backend: BACKENDS[d.name], why: d.why };
}

function isAbsent(v: unknown): boolean {
  return isObj(v) && v.state === 'absent';
}

/** opd's cache of fetched .debs (--source-cache): <sha256>.deb and what it holds, <sha256>.json. */
function sourceCache(settings: Settings): string {
  return settingOf(settings, SOURCE_CACHE)!;
}

interface DebInfo {
  package: string;
  version: string;
}

/** What a cached .deb holds (written when it was fetched and checked), undefined when it is not cached. */
function cachedDeb(settings: Settings, sha: string): DebInfo | undefined {
  try {
    const j = JSON.parse(readFileSync(join(sourceCache(settings), `${sha}.json`), 'utf8')) as DebInfo;
    return typeof j.package === 'string' && typeof j.version === 'string' ? j : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The .deb of a package, in the source cache: fetched (or copied) and verified by its sha256
 * when the cache does not hold it, then checked to be the package the document names (and the
 * version it pins). Returns its path and version.
 */
async function debFile(
  ctx: ApplyContext,
  name: string,
  deb: Artifact,
  version?: string,
): Promise<{ file: string; version: string }> {
  const dir = sourceCache(ctx.settings);
  const sha = deb.sha256.toLowerCase();
  const file = join(dir, `${sha}.deb`);
  if (sha256OfFile(file) !== sha) await installArtifact(ctx, file, deb, { mode: 0o644 });
  const r = await runRead('dpkg-deb', ['--field', file, 'Package', 'Version'], {
    backend: 'packages (dpkg-deb)',
    installHint: 'install dpkg',
  });
  const f = Object.fromEntries(
    r.stdout
      .split('\n')
      .map((l) => /^([A-Za-z]+):\s*(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => [m[1].toLowerCase(), m[2].trim()]),
  );
  const where = deb.url ?? deb.path;
  if (f.package !== name)
    throw new OpdError('backend-failed', `${where} holds package ${f.package ?? '(none)'}, not ${name}`, {
      address: `packages/installed/${name}`,
      hint: 'name the package under its own name (dpkg-deb --field FILE Package)',
    });
  if (version !== undefined && f.version !== version)
    throw new OpdError('backend-failed', `${where} holds ${name} ${f.version}, the document pins version ${version}`, {
      address: `packages/installed/${name}`,
      hint: 'drop version or give the .deb of that version',
    });
  await putFile(ctx, join(dir, `${sha}.json`), JSON.stringify({ package: name, version: f.version }) + '\n', {
    mode: 0o644,
  });
  return { file, version: f.version };
}

function toSection(m: Map<string, InstalledPackage>): Record<string, InstalledState> {
  const out: Record<string, InstalledState> = {};
  for (const [n, p] of m) out[n] = { version: p.version };
  return out;
}

const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * op-dbus `packagekit` (PackageState: `packages.<name>.ensure: installed|removed|latest`,
 * `version`, `provider`; and the installer manifests' `additional_packages`) moves into
 * `packages.installed`. What has no equivalent is refused by name.
 */
function adoptPackageKit(plugins: Record<string, unknown>, ctx: NormalizeContext): void {
  const pk = plugins.packagekit;
  if (pk === undefined) return;
  delete plugins.packagekit;
  const refuse = (message: string, fix: string) => ctx.refuse('/plugins/packagekit', message, fix);
  if (!isObj(pk))
    return refuse(
      'op-dbus `packagekit` must be an object with `packages`',
      'write packagekit: {packages: {<name>: {ensure: installed}}} or plugins.packages.installed',
    );
  const target: Obj = isObj(plugins.packages) ? plugins.packages : {};
  plugins.packages = target;
  if (Array.isArray(target.installed))
    return refuse(
      'op-dbus `packagekit` together with a list-form packages.installed',
      'write packages.installed as a map (name: {}) to merge packagekit into it',
    );
  const installed: Obj = isObj(target.installed) ? target.installed : {};
  target.installed = installed;
  const put = (name: string, spec: unknown, from: string) => {
    if (name in installed) {
      ctx.refuse(from, `package "${name}" is named both in packagekit and in packages.installed`, 'name it once');
      return;
    }
    installed[name] = spec;
    ctx.remap(`/plugins/packages/installed/${esc(name)}`, from);
  };
  const providers: string[] = [];
  for (const [k, v] of Object.entries(pk)) {
    const at = `/plugins/packagekit/${esc(k)}`;
    if (k === 'packages' && isObj(v)) {
      for (const [name, st] of Object.entries(v)) {
        const from = `${at}/${esc(name)}`;
        if (!isObj(st)) {
          put(name, st, from);
          continue;
        }
        const { ensure, version, provider, ...rest } = st;
        for (const extra of Object.keys(rest))
          ctx.refuse(
            `${from}/${esc(extra)}`,
            `unknown op-dbus PackageState field "${extra}"`,
            'op-dbus packages have ensure, version and provider',
          );
        const spec: Obj = {};
        if (ensure === 'removed' || ensure === 'absent') spec.state = 'absent';
        else if (ensure === 'latest') {
          ctx.warn(
            `${from}/ensure`,
            'ensure: latest read as installed: opd installs the candidate version but does not upgrade a package that is already installed',
            'pin `version` to upgrade to a given version',
          );
        } else if (ensure !== 'installed' && ensure !== 'present' && ensure !== undefined) {
          ctx.refuse(
            `${from}/ensure`,
            `op-dbus ensure: ${JSON.stringify(ensure)} is not one of installed, removed, latest`,
            'use installed, removed or latest',
          );
        }
        if (version !== undefined && version !== null) spec.version = version;
        if (typeof provider === 'string') providers.push(provider);
        put(name, spec, from);
      }
    } else if (k === 'additional_packages' && Array.isArray(v)) {
      v.forEach((name, i) =>
        typeof name === 'string'
          ? put(name, {}, `${at}/${i}`)
          : ctx.refuse(`${at}/${i}`, 'a package name must be a string'),
      );
    } else if (k === 'version') {
      // PackageKitState.version: the op-dbus schema version of the section
      if (v !== 1)
        ctx.refuse(
          at,
          `op-dbus packagekit version ${JSON.stringify(v)} is unknown`,
          'write version: 1 or leave it out',
        );
    } else if (k === 'repositories') {
      ctx.refuse(
        at,
        'op-dbus packagekit `repositories` (APT sources with keys) is not supported by the packages plugin',
        'write the source list and its key with plugins.files (/etc/apt/sources.list.d/<name>.sources, /usr/share/keyrings/<name>.gpg) and order the packages after them with depends_on',
      );
    } else if (k === 'manifest') {
      ctx.refuse(
        at,
        'op-dbus packagekit `manifest` (a package list in another file) is not supported',
        'list the packages under plugins.packages.installed',
      );
    } else if (k === 'comment' || k.startsWith('comment_')) {
      ctx.warn(at, `op-dbus note "${k}" ignored`);
    } else {
      ctx.refuse(
        at,
        `op-dbus packagekit field "${k}" is not supported`,
        'op-dbus packagekit sections have packages (name → {ensure, version, provider})',
      );
    }
  }
  if (providers.length) {
    const kinds = [...new Set(providers)].sort().join(', ');
    ctx.warn(
      '/plugins/packagekit/packages',
      `op-dbus \`provider\` (${kinds}) ignored on ${providers.length} package${providers.length === 1 ? '' : 's'}: opd installs through PackageKit where it answers, apt/dpkg otherwise`,
      'set packages.backend (auto, packagekit, apt) to choose',
    );
  }
}

const plugin: Plugin<PackagesSection, PackageChangeData> = {
  ...sectionSpec(manifest),

  adopt(plugins, ctx) {
    adoptPackageKit(plugins, ctx);
  },

  normalize(section, ctx) {
    if (!isObj(section)) return section;
    const out: Obj = { ...section };
    if (out.repositories !== undefined) out.repositories = normalizeRepositories(out.repositories, ctx);
    // also accepted: `installed: [qemu-kvm, {name: libvirt-daemon-system, version: …}]`
    if (Array.isArray(out.installed)) {
      const map: Obj = {};
      out.installed.forEach((item: unknown, i: number) => {
        const key =
          typeof item === 'string' ? item : isObj(item) && typeof item.name === 'string' ? item.name : `#${i}`;
        const spec = isObj(item)
          ? Object.fromEntries(Object.entries(item).filter(([k]) => k !== 'name'))
          : typeof item === 'string'
            ? {}
            : item;
        map[key] = spec;
        ctx.remap(
          `/plugins/packages/installed/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`,
          `/plugins/packages/installed/${i}`,
        );
      });
      out.installed = map;
    }
    // sha256sum prints lower case; upstream checksum files sometimes do not
    if (isObj(out.installed))
      out.installed = Object.fromEntries(
        Object.entries(out.installed).map(([n, spec]) => [
          n,
          isObj(spec) && isObj(spec.deb) && typeof spec.deb.sha256 === 'string'
            ? { ...spec, deb: { ...spec.deb, sha256: spec.deb.sha256.toLowerCase() } }
            : spec,
        ]),
      );
    return out;
  },

  async read(ctx, desired) {
    const repositories: Record<string, Repository> = {};
    for (const [n, spec] of Object.entries(desired.repositories ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const cur = readRepository(n, spec);
      if (cur) repositories[n] = cur;
    }
    const named = desired.installed ?? {};
    const names = Object.keys(named).sort();
    if (!names.length) return { installed: {}, repositories };
    const { backend } = await chooseBackend(ctx.settings, desired.backend);
    lastRead.set(busAddress(ctx.settings), backend);
    const inst = await backend.query(ctx, names);
    const installed = toSection(inst);
    // a package from a .deb is that .deb while the installed version is the one the cached .deb holds
    for (const [n, spec] of Object.entries(named)) {
      if (!spec.deb || !installed[n]) continue;
      const c = cachedDeb(ctx.settings, spec.deb.sha256);
      installed[n].deb =
        c && c.package === n && c.version === installed[n].version
          ? spec.deb
          : ({ sha256: 'not-from-this-deb' } as never);
    }
    // removing a package others depend on destroys them too: find out now, so that plan stays pure
    const removing = new Map([...inst].filter(([n]) => isAbsent(named[n])));
    if (removing.size) {
      const also = await backend.alsoRemoved(ctx, removing);
      if (also.length) for (const n of removing.keys()) installed[n].required_by = also;
    }
    return { installed, repositories };
  },

  plan: planPackage,

  edges(desired) {
    // every package of the document comes after every repository it adds or changes
    const repos = Object.entries(desired.repositories ?? {}).filter(([, r]) => r.state !== 'absent');
    const out: Edge[] = [];
    for (const [p, spec] of Object.entries(desired.installed ?? {}))
      if (spec.state !== 'absent')
        for (const [r] of repos)
          out.push({
            from: `packages/installed/${p}`,
            to: `packages/repositories/${r}`,
            kind: 'repository',
            exact: true,
          });
    return out;
  },

  async apply(ctx, changes) {
    const results = new Map<string, ChangeResult>();
    const dataOf = (c: Change<PackageChangeData>) => c.data!;
    // repositories first (the edges put them in an earlier wave than the packages that need them)
    for (const c of changes) {
      const d = dataOf(c);
      if (d.op !== 'repo-write' && d.op !== 'repo-remove') continue;
      try {
        const output =
          d.op === 'repo-write' ? await writeRepository(ctx, d.name, d.repo!) : await removeRepository(ctx, d.name);
        results.set(c.address, { address: c.address, status: 'ok', output });
      } catch (err) {
        const e = toOpdError(err);
        results.set(c.address, {
          address: c.address,
          status: 'failed',
          error: e.address ? e : new OpdError(e.kind, e.message, { address: c.address, hint: e.hint, cause: err }),
        });
      }
    }
    changes = changes.filter((c) => !results.has(c.address));
    if (!changes.length) return [...results.values()];
    const backend = lastRead.get(busAddress(ctx.settings)) ?? (await chooseBackend(ctx.settings)).backend;
    const removals = changes.filter((c) => dataOf(c).op === 'remove');
    const installs = changes.filter((c) => dataOf(c).op === 'install');
    const settle = async (list: Change<PackageChangeData>[], tx: () => Promise<{ failed: Map<string, OpdError> }>) => {
      if (!list.length) return;
      try {
        const { failed } = await tx();
        for (const c of list) {
          const e = failed.get(dataOf(c).name);
          results.set(
            c.address,
            e ? { address: c.address, status: 'failed', error: e } : { address: c.address, status: 'ok' },
          );
        }
      } catch (err) {
        const e = toOpdError(err);
        for (const c of list) results.set(c.address, { address: c.address, status: 'failed', error: e });
      }
    };
    // removals first: a document that swaps one package for a conflicting one works in one run
    await settle(removals, async () => {
      const names = removals.map((c) => dataOf(c).name);
      const allowDeps = removals.some((c) => c.destructive);
      // read again: a package already gone is done; and a removal planned as harmless must still
      // be harmless (a dependent may have been installed since the plan; PackageKit would take it along)
      const inst = await backend.query(ctx, names);
      if (!allowDeps && inst.size) {
        const also = await backend.alsoRemoved(ctx, inst);
        if (also.length)
          throw new OpdError(
            'refused',
            `removing ${[...inst.keys()].join(', ')} would now also remove ${also.join(', ')}`,
            {
              hint: 'the host changed since the plan: run opd again (the plan then asks for allow_destroy)',
            },
          );
      }
      return backend.remove(ctx, inst, allowDeps);
    });
    // .debs first into the source cache, each verified; one that fails fails only its package
    const items: { name: string; version?: string; file?: string }[] = [];
    const ready: Change<PackageChangeData>[] = [];
    for (const c of installs) {
      const d = dataOf(c);
      if (!d.deb) {
        items.push({ name: d.name, version: d.version });
        ready.push(c);
        continue;
      }
      try {
        const { file } = await debFile(ctx, d.name, d.deb, d.version);
        items.push({ name: d.name, file });
        ready.push(c);
      } catch (err) {
        const e = toOpdError(err);
        results.set(c.address, {
          address: c.address,
          status: 'failed',
          error: e.address ? e : new OpdError(e.kind, e.message, { address: c.address, hint: e.hint, cause: err }),
        });
      }
    }
    await settle(ready, () => backend.install(ctx, items));
    return [...results.values()];
  },

  async show(ctx) {
    const { backend } = await chooseBackend(ctx.settings);
    return { installed: toSection(await backend.query(ctx)) };
  },

  /**
   * Drift: dpkg replaces /var/lib/dpkg/status after every change (whoever makes it); hosts
   * without dpkg get PackageKit's TransactionListChanged instead.
   */
  async watch(ctx, onDrift) {
    const dir = '/var/lib/dpkg';
    if (existsSync(dir)) {
      // name the packages of the document whose dpkg status changed; other packages' activity
      // (another tool installing something unrelated) is no drift of this document
      const named = Object.keys(ctx.desired.installed ?? {});
      let seen = dpkgStatus(named);
      const w = fsWatch(dir, { persistent: false }, (_ev, file) => {
        if (file !== 'status') return;
        if (!named.length) return onDrift();
        const now = dpkgStatus(named);
        for (const n of named) if (now.get(n) !== seen.get(n)) onDrift(`packages/installed/${n}`);
        seen = now;
      });
      w.on('error', (err) => ctx.log.warn({ err: err.message }, 'packages: watching the dpkg database stopped'));
      return { dispose: () => w.close() };
    }
    const sub = await onSignal(ctx.settings, { interface: PK, member: 'TransactionListChanged' }, (m) => {
      if (Array.isArray(m.body[0]) && m.body[0].length === 0) onDrift();
    });
    return { dispose: () => sub.dispose() };
  },

  async doctor(ctx) {
    try {
      const { backend, why } = await chooseBackend(ctx.settings);
      const what = await backend.describe(ctx.settings);
      const probe = await backend.query(ctx, ['dpkg', 'rpm', 'bash']);
      return [
        {
          name: 'packages: backend',
          ok: true,
          detail: `${backend.name}: ${what}; ${why}; ${probe.size} probe package(s) found installed`,
        },
      ];
    } catch (err) {
      const e = toOpdError(err);
      return [
        {
          name: 'packages: backend',
          ok: false,
          detail: e.message,
          hint: e.hint ?? 'start PackageKit (it is D-Bus activated) or install apt/dpkg; --packages-backend picks one',
        },
      ];
    }
  },
};

export default plugin;

/** `Status` and `Version` of the named packages in dpkg's database (absent names are missing). */
function dpkgStatus(names: string[]): Map<string, string> {
  const want = new Set(names);
  const out = new Map<string, string>();
  let text = '';
  try {
    text = readFileSync('/var/lib/dpkg/status', 'utf8');
  } catch {
    return out;
  }
  for (const para of text.split('\n\n')) {
    const name = /^Package: (.+)$/m.exec(para)?.[1];
    if (!name || !want.has(name)) continue;
    out.set(name, `${/^Status: (.+)$/m.exec(para)?.[1] ?? ''} ${/^Version: (.+)$/m.exec(para)?.[1] ?? ''}`);
  }
  return out;
}
