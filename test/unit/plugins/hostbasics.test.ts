import { describe, it, expect } from 'vitest';
import type { Operation } from 'fast-json-patch';
import type { ResourceDiff } from '../../../src/core/plugin.js';
import { compare } from '../../../src/core/diff.js';
import { isSafePath } from '../../../src/core/hostfs.js';
import files, { planFile, validateArgv } from '../../../src/plugins/files/index.js';
import { clearSecretValues, registerSecretValues, scrub } from '../../../src/core/secrets.js';
import { newRedactor } from '../../../src/core/validate.js';
import { planGroup } from '../../../src/plugins/groups/index.js';
import { planUser } from '../../../src/plugins/users/index.js';
import { planModule } from '../../../src/plugins/kmod/index.js';
import { planParam, normValue } from '../../../src/plugins/sysctl/index.js';

function diff(
  plugin: string,
  collection: string,
  name: string,
  current: object | undefined,
  desired: object | undefined,
): ResourceDiff {
  const ops: Operation[] = desired === undefined ? [{ op: 'remove', path: '' }] : compare(current ?? {}, desired);
  const action = desired === undefined ? 'delete' : current === undefined ? 'create' : ops.length ? 'update' : 'noop';
  return {
    plugin,
    collection,
    name,
    address: `${plugin}/${collection}/${name}`,
    action,
    current: current as never,
    desired: desired as never,
    ops,
    allowDestroy: false,
  };
}

describe('files paths', () => {
  it('accepts absolute normalized paths and rejects .., ., empty segments, NUL and relative paths', () => {
    expect(isSafePath('/etc/x.conf')).toBe(true);
    expect(isSafePath('/etc/with space')).toBe(true);
    for (const p of ['/etc/../x', '/etc/..', '/./x', '/etc//x', 'etc/x', '/etc/x\0', '/', '/etc/'])
      expect(isSafePath(p), p).toBe(false);
  });

  it('substitutes %s as one argument and never splits the file name', () => {
    expect(validateArgv('visudo -cf %s', '/etc/a b')).toEqual(['visudo', '-cf', '/etc/a b']);
    expect(validateArgv('tool --file=%s', '/x')).toEqual(['tool', '--file=/x']);
    expect(validateArgv('tool -q', '/x')).toEqual(['tool', '-q', '/x']);
  });
});

describe('files plan', () => {
  it('shows fingerprints, never content, in summaries', () => {
    const [c] = planFile(
      diff('files', 'paths', '/etc/a', { type: 'file', content: 'old\n' }, { type: 'file', content: 'new content' }),
    );
    expect(c.summary).toMatch(/^content changed \(sha256:01d09d19c213 → sha256:[0-9a-f]{12}, 11 B\)$/);
    expect(c.summary).not.toContain('new content');
  });

  it('gives secret content fingerprints only as stand-ins that every output masks (keyed in the trail)', () => {
    const [c] = planFile(
      diff(
        'files',
        'paths',
        '/etc/s',
        { type: 'file', content: 'sha256:' + 'a'.repeat(64), secret: true },
        { type: 'file', content: 'pw', secret: true },
      ),
    );
    expect(c.summary).toMatch(/^secret content changed \(<secret #\d+> → <secret #\d+>, 2 B\)$/);
    expect(scrub(c.summary)).toBe('secret content changed (<secret> → <secret>, 2 B)');
    expect(newRedactor().withKey('k').text(c.summary)).toMatch(
      /^secret content changed \(<secret hmac-sha256:[0-9a-f]{16}> → <secret hmac-sha256:[0-9a-f]{16}>, 2 B\)$/,
    );
    const [n] = planFile(diff('files', 'paths', '/etc/s', undefined, { type: 'file', content: 'pw', secret: true }));
    expect(scrub(n.summary)).toBe('create file (secret content <secret>, 2 B)');
  });

  it('treats content that holds a secret value as secret without `secret: true`, and marks it so in normalize', () => {
    registerSecretValues(['db-password-Xk29aa']);
    try {
      const content = 'user=app\npassword=db-password-Xk29aa\n';
      const [c] = planFile(
        diff('files', 'paths', '/etc/app.env', { type: 'file', content: 'old\n' }, { type: 'file', content }),
      );
      expect(c.summary).not.toMatch(/sha256:/);
      expect(scrub(c.summary)).toBe('secret content changed (<secret> → <secret>, 37 B)');
      const norm = files.normalize!({ paths: { '/etc/app.env': { content } } }, { remap: () => undefined }) as {
        paths: Record<string, { secret?: boolean }>;
      };
      expect(norm.paths['/etc/app.env'].secret).toBe(true);
    } finally {
      clearSecretValues();
    }
  });

  it('refuses to restore content of which only a fingerprint is known (binary or huge)', () => {
    const [c] = planFile(
      diff(
        'files',
        'paths',
        '/etc/bin',
        { type: 'file', content: 'x' },
        { type: 'file', content: { sha256: 'b'.repeat(64), bytes: 3 } },
      ),
    );
    expect(c.summary).toBe('restore content sha256:bbbbbbbbbbbb (3 B)');
    expect((c.data as { lost?: unknown }).lost).toBeDefined();
  });

  it('changes mode and owner in place without rewriting the file', () => {
    const [c] = planFile(
      diff(
        'files',
        'paths',
        '/etc/a',
        { type: 'file', mode: '0644', owner: 'root' },
        { type: 'file', mode: '0640', owner: 'daemon' },
      ),
    );
    expect(c.summary).toBe('mode 0644 → 0640, owner root → daemon');
    expect((c.data as { op: string }).op).toBe('meta');
  });

  it('orders a path after its ancestor directories', () => {
    const [c] = planFile(diff('files', 'paths', '/etc/app/conf.d/x', undefined, { type: 'file', content: '' }));
    expect(c.after).toEqual(['files/paths//etc/app/conf.d', 'files/paths//etc/app', 'files/paths//etc']);
  });

  it('marks removing a directory that still holds other entries as destructive', () => {
    const [full] = planFile(diff('files', 'paths', '/etc/d', { type: 'directory', _nonempty: true }, undefined));
    expect(full.destructive).toBe(true);
    const [empty] = planFile(diff('files', 'paths', '/etc/d', { type: 'directory', _nonempty: false }, undefined));
    expect(empty.destructive).toBeUndefined();
  });
});

describe('groups and users plan', () => {
  it('adds only the missing members and removes only members_absent', () => {
    const cs = planGroup(
      diff(
        'groups',
        'groups',
        'kvm',
        { gid: 36, members: ['a'], members_absent: [] },
        { gid: 36, members: ['a', 'b'], members_absent: ['c'] },
      ),
    );
    expect(cs.map((c) => [c.address, c.summary])).toEqual([['groups/groups/kvm/members', 'add b; remove c']]);
    expect(cs[0].after).toEqual(['groups/groups/kvm', 'users/users/b']);
  });

  it('creates a user after the groups it joins', () => {
    const [c] = planUser(diff('users', 'users', 'h2k', undefined, { system: true, group: 'h2k', groups: ['kvm'] }));
    expect(c.after).toEqual(['groups/groups/h2k', 'groups/groups/kvm']);
    expect((c.data as { cmds: { args: string[] }[] }).cmds[0].args).toEqual([
      '-g',
      'h2k',
      '-r',
      '-M',
      '-G',
      'kvm',
      'h2k',
    ]);
  });
});

describe('kmod and sysctl plan', () => {
  it('writes the persistence files before loading', () => {
    const cs = planModule(
      diff(
        'kmod',
        'modules',
        'kvm_intel',
        { loaded: false, persist: false },
        { loaded: true, persist: true, options: 'nested=1' },
      ),
    );
    expect(cs.map((c) => c.address)).toEqual(['kmod/modules/kvm_intel/files', 'kmod/modules/kvm_intel']);
    expect(cs[1].after).toEqual(['kmod/modules/kvm_intel/files']);
  });

  it('normalizes whitespace in values and plans runtime and persistence together', () => {
    expect(normValue(' 4096\t87380  6291456\n')).toBe('4096 87380 6291456');
    const [c] = planParam(
      diff('sysctl', 'keys', 'net.ipv4.ip_forward', { value: '0', persist: false }, { value: '1', persist: true }),
    );
    expect(c.summary).toBe('"0" → "1", persist in /etc/sysctl.d/90-opd-net.ipv4.ip_forward.conf');
  });
});
