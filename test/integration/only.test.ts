/** `--only PLUGINS` (what opd-boot.service runs): the other sections are validated, not read or planned. */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { doc, opd, tmp } from '../helpers/opd.js';

describe('apply/diff --only', () => {
  const root = tmp('opd-only-');
  const env = { OPD_ROOT: root, OPD_AUDIT_LOG: join(root, 'audit.jsonl') };
  const text = `version: 1
plugins:
  files:
    paths:
      /etc/opd-only-test.conf: { content: "x\\n" }
  kmod:
    modules:
      opd_only_test_mod: { persist: true }
`;

  it('plans only the named plugins', async () => {
    const all = await opd(['diff', doc(text), '-o', 'json'], { env });
    expect(all.code, all.stderr).toBe(2);
    const addrs = (r: { stdout: string }) =>
      (JSON.parse(r.stdout) as { changes: { address: string }[] }).changes.map((c) => c.address.split('/')[0]);
    expect(new Set(addrs(all))).toEqual(new Set(['files', 'kmod']));
    const only = await opd(['diff', '--only', 'files', doc(text), '-o', 'json'], { env });
    expect(only.code, only.stderr).toBe(2);
    expect(new Set(addrs(only))).toEqual(new Set(['files']));
  });

  it('applies only the named plugins, and then finds nothing left to do in them', async () => {
    const a = await opd(['apply', '--only', 'files', doc(text)], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect((await opd(['diff', '--only', 'files', doc(text)], { env })).code).toBe(0);
    expect((await opd(['diff', '--only', 'kmod', doc(text)], { env })).code).toBe(2);
  });

  it('still validates the whole document, and names an unknown plugin (exit 64)', async () => {
    const bad = await opd(['diff', '--only', 'files', doc(text.replace('persist: true', 'persist: maybe'))], { env });
    expect(bad.code).toBe(65);
    const u = await opd(['diff', '--only', 'files,nope', doc(text)], { env });
    expect(u.code).toBe(64);
    expect(u.stderr).toContain('unknown plugin nope');
  });
});
