import { describe, expect, it } from 'vitest';
import {
  installArgs,
  isLockError,
  lockError,
  parseDpkgQuery,
  parseSimulatedRemovals,
  perPackageErrors,
} from '../../../../src/plugins/packages/apt.js';
import { INFO, installedFrom, makeId, parseId } from '../../../../src/plugins/packages/packagekit.js';
import { requestedBackend } from '../../../../src/plugins/packages/plan.js';

describe('the apt backend', () => {
  it('reads only fully installed packages from dpkg-query, sorted by name', () => {
    const out = [
      'zsh\tamd64\t5.9-4\tinstalled',
      'old\tall\t1.0\tconfig-files',
      'bash\tamd64\t5.2.15-2+b8\tinstalled',
      'half\tall\t2\thalf-configured',
      '',
    ].join('\n');
    expect([...parseDpkgQuery(out)]).toEqual([
      ['bash', { version: '5.2.15-2+b8', arch: 'amd64' }],
      ['zsh', { version: '5.9-4', arch: 'amd64' }],
    ]);
  });

  it('lists what a simulated removal would take along, without architecture suffixes', () => {
    const out =
      'NOTE: This is only a simulation!\nRemv opd-test-b [1.0]\nRemv opd-test-a [2.0]\nRemv libfoo:i386 [1]\n';
    expect(parseSimulatedRemovals(out)).toEqual(['libfoo', 'opd-test-a', 'opd-test-b']);
  });

  it('recognises a held dpkg lock and makes it a retryable lock-busy error', () => {
    const stderr =
      'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)\nN: Be aware that removing the lock file is not a solution and may break your system.\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n';
    expect(isLockError(stderr)).toBe(true);
    const e = lockError(stderr);
    expect(e.kind).toBe('lock-busy');
    expect(e.retryable).toBe(true);
    expect(e.message).toContain('held by process 4242');
    expect(isLockError('E: Unable to locate package nope')).toBe(false);
  });

  it('names the package apt cannot locate and the version it cannot find', () => {
    const stderr =
      "E: Unable to locate package opd-nope\nE: Version '9.9' for 'opd-test-a' was not found\nE: Unable to locate package other\n";
    const m = perPackageErrors(stderr, [
      { name: 'opd-nope' },
      { name: 'opd-test-a', version: '9.9' },
      { name: 'fine' },
    ]);
    expect([...m.keys()].sort()).toEqual(['opd-nope', 'opd-test-a']);
    expect(m.get('opd-nope')!.message).toBe('apt: unable to locate package opd-nope');
    expect(m.get('opd-test-a')!.message).toBe('apt: version 9.9 of opd-test-a is not available');
  });

  it('installs pinned versions exactly, never removing other packages on the way', () => {
    const a = installArgs([{ name: 'qemu-kvm' }, { name: 'opd-test-a', version: '1:1.0-1' }]);
    expect(a).toContain('--no-remove');
    expect(a).toContain('--allow-downgrades');
    expect(a.slice(-2)).toEqual(['qemu-kvm', 'opd-test-a=1:1.0-1']);
  });
});

describe('the PackageKit backend', () => {
  it('splits and joins package ids', () => {
    const id = parseId('bash;5.2.15-2+b8;amd64;auto:local');
    expect(id).toEqual({ name: 'bash', version: '5.2.15-2+b8', arch: 'amd64', data: 'auto:local' });
    expect(makeId(id)).toBe('bash;5.2.15-2+b8;amd64;auto:local');
  });

  it('keeps installed packages from Resolve and ignores available ones', () => {
    const m = installedFrom([
      { info: INFO.available, id: 'bash;5.2.15-2+b13;amd64;debian' },
      { info: INFO.installed, id: 'bash;5.2.15-2+b8;amd64;auto:local' },
      { info: INFO.available, id: 'opd-test-a;2.0;all;local' },
    ]);
    expect([...m.keys()]).toEqual(['bash']);
    expect(m.get('bash')!.version).toBe('5.2.15-2+b8');
  });
});

describe('choosing the backend', () => {
  it('lets the setting win over the document, and the document over detection', () => {
    expect(requestedBackend('apt', 'packagekit')).toBe('apt');
    expect(requestedBackend('auto', 'packagekit')).toBe('packagekit');
    expect(requestedBackend(undefined, undefined)).toBe('auto');
    expect(requestedBackend('', 'auto')).toBe('auto');
  });
});
