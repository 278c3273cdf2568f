/**
 * users against the real account database (useradd, usermod, userdel): names carry the
 * test's own prefix `opdt<uniq>` and are removed afterwards.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { opd, doc as mkdoc, tmp, uniq } from '../helpers/opd.js';
import { accountLines, cleanupAccounts, groupMembers, passwdEntry } from '../helpers/accounts.js';

const p = `opdt${uniq(5)}`;
const user = `${p}u`;
const [ga, gb] = [`${p}a`, `${p}b`];
const work = tmp('opd-users-');
/** Documents go into the test's own directory (removed afterwards), one file per document. */
let docs = 0;
const doc = (text: string) => mkdoc(text, work, `state-${++docs}.yaml`);
const env = { OPD_AUDIT_LOG: join(work, 'audit.jsonl') };

afterAll(async () => {
  await cleanupAccounts([user], [ga, gb, user]);
  rmSync(work, { recursive: true, force: true });
});

const d = (spec: string) =>
  doc(
    `version: 1\nplugins:\n  groups:\n    groups:\n      ${ga}: { system: true }\n      ${gb}: { system: true }\n  users:\n    users:\n      ${user}: ${spec}\n`,
  );
const v1 = `{ system: true, home: /nonexistent, shell: /usr/sbin/nologin, comment: "opd test user", groups: [${ga}] }`;
const v2 = `{ system: true, home: /var/lib/${p}, shell: /bin/sh, comment: "opd test user 2", groups: [${gb}] }`;

describe('users', () => {
  it('creates a system user with home, shell, comment and a supplementary group', async () => {
    const r = await opd(['apply', d(v1)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const f = passwdEntry(user)!;
    expect(Number(f[2])).toBeLessThan(1000);
    expect(f.slice(4)).toEqual(['opd test user', '/nonexistent', '/usr/sbin/nologin']);
    expect(groupMembers(ga)).toEqual([user]);
  });

  it('reports no changes on a second apply and exits 0 from diff', async () => {
    expect((await opd(['apply', d(v1)], { env })).stdout).toContain('no changes');
    expect((await opd(['diff', d(v1)], { env })).code).toBe(0);
  });

  it('leaves the account database untouched when diffing pending changes', async () => {
    const before = accountLines(p);
    const r = await opd(['diff', d(v2)], { env });
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('shell "/usr/sbin/nologin" → "/bin/sh"');
    expect(accountLines(p)).toBe(before);
  });

  it('changes home, shell and comment and adds a group without leaving the others', async () => {
    const r = await opd(['apply', d(v2)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(passwdEntry(user)!.slice(4)).toEqual(['opd test user 2', `/var/lib/${p}`, '/bin/sh']);
    expect(groupMembers(ga)).toEqual([user]);
    expect(groupMembers(gb)).toEqual([user]);
    expect((await opd(['apply', d(v2)], { env })).stdout).toContain('no changes');
  });

  it('refuses to turn an existing system user into a regular one', async () => {
    const r = await opd(['apply', d(`{ system: false }`)], { env });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('set at creation only');
  });

  it('removes a user the document marks absent', async () => {
    const text = `version: 1\nplugins:\n  users:\n    users:\n      ${user}: { state: absent }\n  groups:\n    groups:\n      ${ga}: { state: absent }\n      ${gb}: { state: absent }\n`;
    const r = await opd(['apply', doc(text)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(passwdEntry(user)).toBeUndefined();
    expect(accountLines(p)).toBe('');
    expect((await opd(['apply', doc(text)], { env })).stdout).toContain('no changes');
  });

  it('rejects hostile names and paths before running anything (exit 65)', async () => {
    for (const bad of [
      `"${p}$(id)": {}`,
      `${p}x: { home: /home/../etc }`,
      `${p}x: { shell: "/bin/sh -c id" }`,
      `${p}x: { comment: "a:b" }`,
    ]) {
      const r = await opd(['apply', doc(`version: 1\nplugins:\n  users:\n    users:\n      ${bad}\n`)], { env });
      expect(r.code, bad + r.stdout + r.stderr).toBe(65);
    }
    expect(accountLines(p)).toBe('');
  });

  it('keeps an intact audit chain', async () => {
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
