/**
 * packages against the real package managers of this machine: PackageKit over the system bus
 * (the namespaced systemd activates packagekitd and polkitd) and apt/dpkg directly, both with
 * an offline repository of tiny packages the test builds (test/helpers/aptrepo.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { OPD, doc, opd, tmp } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { buildRepo, installedTestPackages, locked, purgeTestPackages, removeRepo } from '../helpers/aptrepo.js';

function section(installed: string): string {
  return `version: 1\nplugins:\n  packages:\n    installed:\n${installed
    .trim()
    .split('\n')
    .map((l) => `      ${l.trim()}`)
    .join('\n')}\n`;
}

beforeAll(async () => {
  await ensureSystemd();
  await buildRepo();
  await purgeTestPackages();
});

afterAll(async () => {
  await removeRepo();
});

for (const backend of ['packagekit', 'apt'] as const) {
  // PackageKit opens the whole apt cache for each transaction: seconds each on a busy machine
  describe(`packages through ${backend}`, { timeout: 300_000 }, () => {
    const dir = tmp('opd-pkgs-');
    const env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_PACKAGES_BACKEND: backend };
    /** opd under the shared apt lock (apply takes the dpkg lock, directly or through PackageKit). */
    const run = (args: string[]) => locked('node', [OPD, ...args], { ...env, OPD_LOG_LEVEL: 'warn' });

    beforeAll(async () => {
      await purgeTestPackages();
    });

    it('reports the backend in doctor', async () => {
      const r = await opd(['doctor', '--plugin', 'packages'], { env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`packages: backend: ${backend}:`);
      if (backend === 'packagekit') expect(r.stdout).toMatch(/PackageKit \d+\.\d+/);
    });

    it('installs a pinned version and a package that pulls it in as a dependency', async () => {
      const d = doc(section(`opd-test-a: { version: "1.0" }\nopd-test-b: {}`), dir, 'install.yaml');
      const r = await run(['apply', d]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(await installedTestPackages()).toEqual({ 'opd-test-a': '1.0', 'opd-test-b': '1.0' });
      const again = await run(['apply', d]);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toContain('no changes');
      const diff = await opd(['diff', d], { env });
      expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    });

    it('leaves dpkg untouched on diff with pending changes', async () => {
      const d = doc(
        section(`opd-test-a: { version: "2.0" }\nopd-test-c: {}\nopd-test-b: { state: absent }`),
        dir,
        'pending.yaml',
      );
      // under the apt lock, so that nobody else changes dpkg's status meanwhile
      const r = await locked(
        'bash',
        [
          '-c',
          'sha256sum /var/lib/dpkg/status; node "$0" diff "$1"; echo "exit=$?"; sha256sum /var/lib/dpkg/status',
          OPD,
          d,
        ],
        env,
      );
      const [before, ...rest] = r.stdout.trim().split('\n');
      const after = rest[rest.length - 1];
      expect(r.stdout).toContain('exit=2');
      expect(r.stdout).toContain('opd-test-a: version 1.0 → 2.0');
      expect(r.stdout).toContain('opd-test-c');
      expect(after).toBe(before);
      expect(await installedTestPackages()).toEqual({ 'opd-test-a': '1.0', 'opd-test-b': '1.0' });
    });

    it('upgrades and downgrades to the exact version the document names', async () => {
      const up = await run(['apply', doc(section(`opd-test-a: { version: "2.0" }`), dir, 'v2.yaml')]);
      expect(up.code, up.stdout + up.stderr).toBe(0);
      expect(up.stdout).toContain('version 1.0 → 2.0');
      expect((await installedTestPackages())['opd-test-a']).toBe('2.0');
      const down = await run(['apply', doc(section(`opd-test-a: { version: "1.0" }`), dir, 'v1.yaml')]);
      expect(down.code, down.stdout + down.stderr).toBe(0);
      expect(await installedTestPackages()).toEqual({ 'opd-test-a': '1.0', 'opd-test-b': '1.0' });
    });

    it('refuses to remove a package another installed package depends on', async () => {
      const d = doc(section(`opd-test-a: { state: absent }`), dir, 'absent-a.yaml');
      const diff = await opd(['diff', d], { env });
      expect(diff.code).toBe(2);
      expect(diff.stdout).toMatch(/opd-test-a.*also removes opd-test-b/);
      expect(diff.stdout).toContain('refused');
      const r = await run(['apply', d]);
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain('allow_destroy');
      expect(await installedTestPackages()).toEqual({ 'opd-test-a': '1.0', 'opd-test-b': '1.0' });
    });

    it('refuses at apply time a removal planned as harmless when a dependent is installed by then', async () => {
      // the plan saw no dependents (say opd-test-b came later): apply checks again before removing
      const plugin = (await import('../../src/plugins/packages/index.js')).default;
      const { ApplyContext } = await import('../../src/core/plugin.js');
      const { closeBuses } = await import('../../src/dbus.js');
      const log = { warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Parameters<
        typeof ApplyContext.create
      >[1];
      try {
        const ctx = ApplyContext.create({ packagesBackend: backend }, log, false);
        const [r] = await plugin.apply(ctx, [
          {
            address: 'packages/installed/opd-test-a',
            resource: 'packages/installed/opd-test-a',
            plugin: 'packages',
            action: 'delete',
            summary: 'remove 1.0',
            data: { op: 'remove', name: 'opd-test-a' },
          },
        ]);
        expect(r.status).toBe('failed');
        expect(r.error?.kind).toBe('refused');
        expect(r.error?.message).toContain('would now also remove opd-test-b');
      } finally {
        await closeBuses();
      }
      expect(await installedTestPackages()).toEqual({ 'opd-test-a': '1.0', 'opd-test-b': '1.0' });
    });

    it('removes it together with its dependents when allow_destroy says so', async () => {
      const r = await run([
        'apply',
        doc(section(`opd-test-a: { state: absent, allow_destroy: true }`), dir, 'destroy-a.yaml'),
      ]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(await installedTestPackages()).toEqual({});
    });

    it('installs and removes in one run, one transaction each, and removes a leaf package without allow_destroy', async () => {
      const first = await run(['apply', doc(section(`opd-test-b: {}\nopd-test-c: {}`), dir, 'bc.yaml')]);
      expect(first.code, first.stdout + first.stderr).toBe(0);
      expect(await installedTestPackages()).toEqual({ 'opd-test-a': '2.0', 'opd-test-b': '1.0', 'opd-test-c': '1.0' });
      const d = doc(
        section(`opd-test-b: { state: absent }\nopd-test-c: { state: absent }\nopd-test-a: { version: "1.0" }`),
        dir,
        'mixed.yaml',
      );
      const r = await run(['apply', d]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(await installedTestPackages()).toEqual({ 'opd-test-a': '1.0' });
      const again = await run(['apply', d]);
      expect(again.stdout).toContain('no changes');
      const gone = await run(['apply', doc(section(`opd-test-a: { state: absent }`), dir, 'absent-a2.yaml')]);
      expect(gone.code, gone.stdout + gone.stderr).toBe(0);
      expect(await installedTestPackages()).toEqual({});
    });

    it('names the package it cannot find and still installs the others', async () => {
      const r = await run(['apply', doc(section(`opd-test-nope: {}\nopd-test-c: {}`), dir, 'unknown.yaml')]);
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/unable to locate package opd-test-nope/);
      expect(await installedTestPackages()).toEqual({ 'opd-test-c': '1.0' });
    });

    it('names a version the repositories do not have', async () => {
      const r = await run(['apply', doc(section(`opd-test-a: { version: "9.9" }`), dir, 'v99.yaml')]);
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/version 9\.9 of opd-test-a is not available/);
      expect((await installedTestPackages())['opd-test-a']).toBeUndefined();
    });

    it('prints installed packages with show so that feeding them back changes nothing', async () => {
      const s = await opd(['show', '--plugin', 'packages'], { env });
      expect(s.code, s.stderr).toBe(0);
      expect(s.stdout).toMatch(/opd-test-c:\n\s+version: "?1\.0"?/);
      expect(s.stdout).toMatch(/\n\s+bash:\n/);
      const diff = await opd(['diff', doc(s.stdout, dir, 'shown.yaml')], { env });
      expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    });

    it('reports drift to the daemon when dpkg changes behind its back', async () => {
      const plugin = (await import('../../src/plugins/packages/index.js')).default;
      const log = { warn: () => undefined } as unknown as Parameters<NonNullable<typeof plugin.watch>>[0]['log'];
      let drifted!: () => void;
      const drift = new Promise<void>((resolve) => (drifted = resolve));
      const seen: (string | undefined)[] = [];
      const desired = { installed: { 'opd-test-c': {}, 'opd-test-a': {} } };
      const w = await plugin.watch!({ settings: { packagesBackend: backend }, log, desired }, (a) => {
        seen.push(a);
        if (a === 'packages/installed/opd-test-c') drifted();
      });
      try {
        expect(await installedTestPackages()).toHaveProperty('opd-test-c');
        const r = await locked('dpkg', ['--purge', 'opd-test-c']);
        expect(r.code, r.stderr).toBe(0);
        // the drift names exactly the package dpkg removed behind opd's back
        await drift;
        expect(seen.filter((a) => a !== undefined && a !== 'packages/installed/opd-test-c')).toEqual([]);
      } finally {
        await w.dispose();
      }
    });

    it('keeps an intact audit trail', async () => {
      await purgeTestPackages();
      const r = await opd(['audit', 'verify'], { env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
    });
  });
}

describe('packages through apt when another process holds the dpkg lock', () => {
  it('retries, then fails with a lock error that says what to do', async () => {
    const dir = tmp('opd-pkgs-lock-');
    const env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_PACKAGES_BACKEND: 'apt' };
    const d = doc(section(`opd-test-c: {}`), dir);
    // hold dpkg's frontend lock (fcntl, as apt does) while opd runs; all under the shared test lock
    const hold = `import fcntl, subprocess, sys
f = open('/var/lib/dpkg/lock-frontend', 'w')
fcntl.lockf(f, fcntl.LOCK_EX)
r = subprocess.run(['node', sys.argv[1], 'apply', sys.argv[2]], capture_output=True, text=True)
print(r.stdout + r.stderr)
print('exit=%d' % r.returncode)`;
    const r = await locked('python3', ['-c', hold, OPD, d], env);
    // lock-busy is retryable: the core tried three times, then reports the change failed
    expect(r.stdout).toContain('exit=1');
    expect(r.stdout).toMatch(/opd-test-c: install \(3 attempts\)/);
    expect(r.stdout).toMatch(/apt is busy: Could not get lock/);
    expect(r.stdout).toMatch(/another package manager/);
    expect(await installedTestPackages()).toEqual({});
  });
});
