/**
 * groups against the real account database (groupadd, groupmod, gpasswd, groupdel): group
 * names and users carry the test's own prefix `opdt<uniq>` and are removed afterwards.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { opd, doc as mkdoc, tmp, uniq } from '../helpers/opd.js';
import { accountLines, cleanupAccounts, freeGid, groupMembers } from '../helpers/accounts.js';

const p = `opdt${uniq(5)}`;
const g = `${p}g`;
const [m1, m2, m3] = [`${p}m1`, `${p}m2`, `${p}m3`];
const work = tmp('opd-groups-');
/** Documents go into the test's own directory (removed afterwards), one file per document. */
let docs = 0;
const doc = (text: string) => mkdoc(text, work, `state-${++docs}.yaml`);
const env = { OPD_AUDIT_LOG: join(work, 'audit.jsonl') };

afterAll(async () => {
  await cleanupAccounts([m1, m2, m3], [g, `${p}s`]);
  rmSync(work, { recursive: true, force: true });
});

const users = `
  users:
    users:
      ${m1}: { system: true, shell: /usr/sbin/nologin }
      ${m2}: { system: true, shell: /usr/sbin/nologin }
      ${m3}: { system: true, shell: /usr/sbin/nologin }
`;
const d = (groups: string) => doc(`version: 1\nplugins:${users}  groups:\n    groups:\n${groups}`);

describe('groups', () => {
  it('creates a group and a system group with a member', async () => {
    const r = await opd(['apply', d(`      ${g}: { members: [${m1}] }\n      ${p}s: { system: true }\n`)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(groupMembers(g)).toEqual([m1]);
    expect(groupMembers(`${p}s`)).toEqual([]);
  });

  it('reports no changes on a second apply and exits 0 from diff', async () => {
    const text = `      ${g}: { members: [${m1}] }\n      ${p}s: { system: true }\n`;
    const r = await opd(['apply', d(text)], { env });
    expect(r.stdout).toContain('no changes');
    expect((await opd(['diff', d(text)], { env })).code).toBe(0);
  });

  it('adds members without removing members the document does not name', async () => {
    await execa('gpasswd', ['-a', m2, g]); // a membership made outside opd
    const r = await opd(['apply', d(`      ${g}: { members: [${m1}, ${m3}] }\n`)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`add ${m3}`);
    expect(groupMembers(g)?.sort()).toEqual([m1, m2, m3].sort());
  });

  it('leaves the account database untouched when diffing pending changes', async () => {
    const before = accountLines(p);
    const gid = freeGid();
    const r = await opd(
      ['diff', d(`      ${g}: { gid: ${gid}, members_absent: [${m1}] }\n      ${p}s: { state: absent }\n`)],
      { env },
    );
    expect(r.code).toBe(2);
    expect(accountLines(p)).toBe(before);
  });

  it('changes the gid and removes a member named in members_absent only', async () => {
    const gid = freeGid();
    const text = `      ${g}: { gid: ${gid}, members: [${m3}], members_absent: [${m1}] }\n`;
    const r = await opd(['apply', d(text)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(groupMembers(g)?.sort()).toEqual([m2, m3].sort());
    const { stdout } = await execa('getent', ['group', g]);
    expect(stdout.split(':')[2]).toBe(String(gid));
    expect((await opd(['apply', d(text)], { env })).stdout).toContain('no changes');
  });

  it('removes groups and users the document marks absent', async () => {
    const text = `version: 1\nplugins:\n  groups:\n    groups:\n      ${g}: { state: absent }\n      ${p}s: { state: absent }\n  users:\n    users:\n      ${m1}: { state: absent }\n      ${m2}: { state: absent }\n      ${m3}: { state: absent }\n`;
    const r = await opd(['apply', doc(text)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(groupMembers(g)).toBeUndefined();
    expect(accountLines(p)).toBe('');
    expect((await opd(['apply', doc(text)], { env })).stdout).toContain('no changes');
  });

  it('rejects group and member names with shell metacharacters (exit 65)', async () => {
    for (const bad of [`      "${p};id": {}\n`, `      ${g}: { members: ["${m1}$(id)"] }\n`, `      ../${p}: {}\n`]) {
      const r = await opd(['apply', doc(`version: 1\nplugins:\n  groups:\n    groups:\n${bad}`)], { env });
      expect(r.code, bad + r.stdout + r.stderr).toBe(65);
    }
    expect(accountLines(p)).toBe('');
  });

  it("changes the account database of a sandbox root with --root, never the host's", async () => {
    const root = join(work, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    for (const f of ['passwd', 'group', 'shadow', 'gshadow', 'login.defs'])
      copyFileSync(`/etc/${f}`, join(root, 'etc', f));
    const text = `version: 1\nplugins:\n  groups:\n    groups:\n      ${g}: { system: true, members: [${m1}] }\n  users:\n    users:\n      ${m1}: { system: true }\n`;
    const r = await opd(['apply', '--root', root, doc(text)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(new RegExp(`^${g}:x:\\d+:${m1}$`, 'm'));
    expect(accountLines(p)).toBe('');
    expect((await opd(['apply', '--root', root, doc(text)], { env })).stdout).toContain('no changes');
    const rm = `version: 1\nplugins:\n  groups:\n    groups:\n      ${g}: { members_absent: [${m1}] }\n`;
    expect((await opd(['apply', '--root', root, doc(rm)], { env })).code).toBe(0);
    expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(new RegExp(`^${g}:x:\\d+:$`, 'm'));
    expect(accountLines(p)).toBe('');
  });

  it('keeps an intact audit chain', async () => {
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
