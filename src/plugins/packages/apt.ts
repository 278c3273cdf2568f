/**
 * apt/dpkg backend: `dpkg-query -W` for reads (one call), `apt-get -s remove` for what a removal
 * would take along (one call), `apt-get install` / `apt-get remove` for changes (one call each).
 * Names come from the schema (Debian policy pattern): they never start with `-` and never reach a shell.
 */
import { TUNABLES } from './manifest.js';
import type { ApplyContext, ReadContext } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { ExecFailure, runRead, runMutate } from '../../exec.js';
import type { InstallItem, InstalledPackage, PackageBackend, TxResult } from './backend.js';

const HINT = 'install dpkg and apt (Debian/Ubuntu), or use --packages-backend packagekit where PackageKit runs';
const ENV = { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', LANG: 'C', LANGUAGE: '' };
const FORMAT = '${Package}\t${Architecture}\t${Version}\t${db:Status-Status}\n';
/** Installs of large packages take a while; the core's apply timeout still bounds the run. */
const TX_TIMEOUT = TUNABLES.packageTxMs;

/** `dpkg-query -W -f=FORMAT` output → installed packages (config-files, half-installed … are not installed). */
export function parseDpkgQuery(out: string): Map<string, InstalledPackage> {
  const m = new Map<string, InstalledPackage>();
  for (const line of out.split('\n')) {
    const [name, arch, version, status] = line.split('\t');
    if (!name || !version || status !== 'installed') continue;
    if (!m.has(name)) m.set(name, { version, arch: arch ?? '' });
  }
  return new Map([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `apt-get -s remove` output → the packages it would remove (without :arch). */
export function parseSimulatedRemovals(out: string): string[] {
  const names = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /^(?:Remv|Purg) (\S+)/.exec(line);
    if (m) names.add(m[1].replace(/:[a-z0-9-]+$/, ''));
  }
  return [...names].sort();
}

/** apt's "another process holds the lock" messages (apt 1.x … 2.x). */
export function isLockError(stderr: string): boolean {
  return /Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock the (administration|download) directory|is another process using it\?/.test(
    stderr,
  );
}

export function lockError(stderr: string): OpdError {
  const line =
    stderr
      .split('\n')
      .find((l) => /lock/i.test(l))
      ?.replace(/^E:\s*/, '')
      .trim() ?? 'the dpkg lock is held';
  return new OpdError('lock-busy', `apt is busy: ${line}`, {
    hint: 'another package manager (apt, unattended-upgrades, PackageKit) is running; opd retries, else wait for it to finish and run opd again',
  });
}

/** Errors apt reports for one package: name → error. */
export function perPackageErrors(stderr: string, items: InstallItem[]): Map<string, OpdError> {
  const out = new Map<string, OpdError>();
  for (const m of stderr.matchAll(/Unable to locate package (\S+)/g)) {
    const name = m[1].replace(/=.*$/, '');
    out.set(
      name,
      new OpdError('backend-failed', `apt: unable to locate package ${name}`, {
        address: `packages/installed/${name}`,
        hint: `check the name (apt-cache policy ${name}); add the repository that has it and run apt-get update`,
      }),
    );
  }
  for (const m of stderr.matchAll(/Version '([^']+)' for '([^']+)' was not found/g)) {
    const [, version, name] = m;
    out.set(
      name,
      new OpdError('backend-failed', `apt: version ${version} of ${name} is not available`, {
        address: `packages/installed/${name}`,
        hint: `apt-cache policy ${name} lists the versions the repositories have`,
      }),
    );
  }
  const known = new Set(items.map((i) => i.name));
  for (const n of [...out.keys()]) if (!known.has(n)) out.delete(n);
  return out;
}

function txError(what: string, err: unknown): OpdError {
  if (err instanceof ExecFailure) {
    if (isLockError(err.stderr)) return lockError(err.stderr);
    if (/Packages need to be removed but remove is disabled/.test(err.stderr))
      return new OpdError('refused', `${what} would remove other installed packages`, {
        hint: 'remove them explicitly (state: absent, with allow_destroy when others depend on them), or pin compatible versions',
      });
  }
  return err instanceof OpdError ? err : new OpdError('backend-failed', `${what} failed: ${String(err)}`);
}

export function installArgs(items: InstallItem[]): string[] {
  return [
    'install',
    '-y',
    '-q',
    '--no-remove',
    '--allow-downgrades',
    '-o',
    'Dpkg::Options::=--force-confdef',
    '-o',
    'Dpkg::Options::=--force-confold',
    ...items.map((i) => i.file ?? (i.version ? `${i.name}=${i.version}` : i.name)),
  ];
}

export const aptBackend: PackageBackend = {
  name: 'apt',

  async query(_ctx: ReadContext, names?: string[]): Promise<Map<string, InstalledPackage>> {
    if (names && !names.length) return new Map();
    // exit 1: some names are not known to dpkg at all (they are simply not installed)
    const r = await runRead('dpkg-query', ['-W', `-f=${FORMAT}`, ...(names ?? [])], {
      okCodes: [0, 1],
      env: ENV,
      backend: 'packages (dpkg)',
      installHint: HINT,
    });
    if (r.exitCode === 1 && !/no packages found matching/.test(r.stderr))
      throw new OpdError('backend-failed', `dpkg-query failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`, {
        hint: 'check /var/lib/dpkg/status (dpkg --audit)',
      });
    return parseDpkgQuery(r.stdout);
  },

  async alsoRemoved(_ctx: ReadContext, installed: Map<string, InstalledPackage>): Promise<string[]> {
    const names = [...installed.keys()];
    if (!names.length) return [];
    // a simulation needs no lock and changes nothing
    const r = await runRead('apt-get', ['-s', '-q', 'remove', ...names], {
      env: ENV,
      backend: 'packages (apt)',
      installHint: HINT,
      okCodes: [0, 100],
    });
    if (r.exitCode === 100)
      throw new OpdError(
        'backend-failed',
        `apt-get -s remove failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`,
        { hint: 'run apt-get -f install to repair broken dependencies first' },
      );
    const set = new Set(names);
    return parseSimulatedRemovals(r.stdout).filter((n) => !set.has(n));
  },

  async install(ctx: ApplyContext, items: InstallItem[]): Promise<TxResult> {
    const failed = new Map<string, OpdError>();
    let todo = items;
    // at most one more attempt: without the packages apt named as unknown
    for (let attempt = 0; todo.length && attempt < 2; attempt++) {
      try {
        await runMutate(ctx, 'apt-get', installArgs(todo), {
          env: ENV,
          timeout: TX_TIMEOUT,
          backend: 'packages (apt)',
          installHint: HINT,
          // dpkg and maintainer scripts write all over the host: never inside opd's sandbox
          outsideSandbox: true,
        });
        return { failed };
      } catch (err) {
        const per =
          err instanceof ExecFailure && !isLockError(err.stderr)
            ? perPackageErrors(err.stderr, todo)
            : new Map<string, OpdError>();
        if (!per.size || attempt === 1) throw txError('apt-get install', err);
        for (const [n, e] of per) failed.set(n, e);
        todo = todo.filter((i) => !per.has(i.name));
      }
    }
    return { failed };
  },

  async remove(ctx: ApplyContext, installed: Map<string, InstalledPackage>): Promise<TxResult> {
    const names = [...installed.keys()];
    if (!names.length) return { failed: new Map() };
    try {
      await runMutate(ctx, 'apt-get', ['remove', '-y', '-q', ...names], {
        env: ENV,
        timeout: TX_TIMEOUT,
        backend: 'packages (apt)',
        installHint: HINT,
        outsideSandbox: true,
      });
    } catch (err) {
      throw txError('apt-get remove', err);
    }
    return { failed: new Map() };
  },

  async describe(): Promise<string> {
    const r = await runRead('apt-get', ['--version'], { env: ENV, backend: 'packages (apt)', installHint: HINT });
    return `apt/dpkg (${r.stdout.split('\n')[0].trim()})`;
  },
};
