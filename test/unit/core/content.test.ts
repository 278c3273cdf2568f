import { afterEach, describe, expect, it } from 'vitest';
import { changeContentDiffs, planContentDiffs, unifiedDiff, CONTENT_LIMITS } from '../../../src/core/content.js';
import { keyPath } from '../../../src/core/errors.js';
import { displayAddress, summarize } from '../../../src/core/plan.js';
import { clearSecretValues, registerSecretValues } from '../../../src/core/secrets.js';
import { newRedactor } from '../../../src/core/validate.js';
import type { ResourceDiff } from '../../../src/core/plugin.js';
import type { Plan, PlannedChange } from '../../../src/core/plan.js';

function fileDiff(current: unknown, desired: unknown, name = '/etc/x.conf'): ResourceDiff {
  return {
    plugin: 'files',
    collection: 'paths',
    name,
    address: `files/paths/${name}`,
    action: current === undefined ? 'create' : 'update',
    current,
    desired,
    ops: [{ op: current === undefined ? 'add' : 'replace', path: '/content', value: 'x' }],
  } as unknown as ResourceDiff;
}

describe('content diffs', () => {
  afterEach(() => clearSecretValues());
  const r = newRedactor();

  it('shows a unified diff of a changed text, the host first', () => {
    const d = fileDiff({ type: 'file', content: 'a\nb\nc\n' }, { type: 'file', content: 'a\nB\nc\n' });
    const [cd] = changeContentDiffs(d, d, r);
    expect(cd.diff).toBe('--- content (host)\n+++ content (document)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n');
    expect(cd.note).toBeUndefined();
  });

  it("finds a resource's texts once per plan, not once per change (a bridge with 1,000 port changes)", () => {
    const ports = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`p${i}`, { type: 'internal' }]));
    const d = {
      plugin: 'ovs',
      collection: 'bridges',
      name: 'br0',
      address: 'ovs/bridges/br0',
      action: 'create',
      current: undefined,
      desired: { ports },
      ops: [{ op: 'add', path: '', value: { ports } }],
    } as unknown as ResourceDiff;
    const changes = Object.keys(ports).map(
      (p, id) =>
        ({
          id,
          address: `ovs/bridges/br0/ports/${p}`,
          resource: 'ovs/bridges/br0',
          deps: [],
          ops: [],
        }) as unknown as PlannedChange,
    );
    let walks = 0;
    const counting = Object.create(r) as typeof r;
    counting.texts = (...args: Parameters<typeof r.texts>) => {
      walks++;
      return r.texts(...args);
    };
    expect(planContentDiffs({ changes, diffs: [d] } as Plan, counting).size).toBe(0);
    expect(walks).toBe(2); // the host's side and the document's, once
  });

  it('cuts a long diff with a note saying how long it was', () => {
    const many = Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\n') + '\n';
    const cd = unifiedDiff('content', undefined, many);
    expect(cd.diff!.split('\n').length).toBe(CONTENT_LIMITS.maxLines + 3);
    expect(cd.note).toBe(`content: diff cut at ${CONTENT_LIMITS.maxLines} of 501 lines`);
  });

  it('does not diff a text over the size limit, and says so', () => {
    const cd = unifiedDiff('content', 'a', 'x'.repeat(CONTENT_LIMITS.maxBytes + 1));
    expect(cd.diff).toBeUndefined();
    expect(cd.note).toMatch(/^content: too large to diff \(1\.0 MiB; at most 1\.0 MiB\)$/);
  });

  it('notes binary content instead of diffing it', () => {
    const d = fileDiff({ type: 'file', content: 'a\0b' }, { type: 'file', content: 'text\n' });
    const [cd] = changeContentDiffs(d, d, r);
    expect(cd.diff).toBeUndefined();
    expect(cd.note).toBe('content: binary content, no diff (binary, 3 B → text)');
  });

  it('never shows the text of a secret file, nor one that holds a secret value', () => {
    const secret = fileDiff(undefined, { type: 'file', content: 'pw\n', secret: true });
    expect(changeContentDiffs(secret, secret, r)).toEqual([{ field: 'content', note: 'content: secret, not shown' }]);
    registerSecretValues(['hunter2-password']);
    const holds = fileDiff(
      { type: 'file', content: 'user=a\n' },
      { type: 'file', content: 'user=a\npass=hunter2-password\n' },
    );
    const out = changeContentDiffs(holds, holds, r);
    expect(out).toEqual([{ field: 'content', note: 'content: secret, not shown' }]);
    expect(JSON.stringify(out)).not.toContain('hunter2');
  });

  it('never shows the host text of a file the document removes (a bare state: absent cannot say it is not secret)', () => {
    const d = {
      ...fileDiff({ type: 'file', content: 'pw=hunter3-on-the-host\n' }, { state: 'absent' }),
      action: 'delete',
      ops: [{ op: 'remove', path: '' }],
    } as ResourceDiff;
    const out = changeContentDiffs(d, d, r);
    expect(out).toEqual([
      { field: 'content', note: 'content: removed (23 B), not shown: only texts the document holds are diffed' },
    ]);
    expect(JSON.stringify(out)).not.toContain('hunter3');
  });
});

describe('addresses and key paths', () => {
  it('prints an address as users write paths, files/paths/etc/x for files/paths//etc/x', () => {
    expect(displayAddress('files/paths//etc/myapp/myapp.conf')).toBe('files/paths/etc/myapp/myapp.conf');
    expect(displayAddress('ovs/bridges/br0')).toBe('ovs/bridges/br0');
  });

  it('names a place in the document by its key path, not an escaped JSON pointer', () => {
    expect(keyPath('/plugins/files/paths/~1etc~1x/mode')).toBe('plugins.files.paths["/etc/x"].mode');
    expect(keyPath('/plugins/lxc/containers/c1/network/0/link')).toBe('plugins.lxc.containers.c1.network[0].link');
    expect(keyPath('/plugins/systemd/units/a.service')).toBe('plugins.systemd.units["a.service"]');
    expect(keyPath('')).toBe('');
  });

  it('counts a plan as create, change, delete and refused, every action by name', () => {
    expect(
      summarize({
        changes: [
          { action: 'create' },
          { action: 'restart' },
          { action: 'update' },
          { action: 'delete', refused: 'data' },
        ],
      }),
    ).toEqual({
      create: 1,
      change: 2,
      delete: 0,
      refused: 1,
      total: 4,
      actions: { create: 1, delete: 1, restart: 1, update: 1 },
    });
  });
});
