/**
 * users: local users (uid, primary group, home, shell, comment, system flag) and the
 * supplementary groups they must be in (added only; never removed unless a group names the
 * user in members_absent). Reads: one read of /etc/passwd and /etc/group (under --root when
 * given, through `--prefix`). Apply: useradd, usermod, userdel.
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import type { Change, Obj, Plugin, ReadContext, ResourceDiff } from '../../core/plugin.js';
import { resourceChange } from '../../core/plugin.js';
import type { UsersDoc, User } from './section.gen.js';
import { readAccounts } from '../../core/hostfs.js';
import { loginDefs, shadowPlugin, type ShadowChangeData } from '../../host/shadow.js';

/** The section's types, generated from schema/users.schema.json (npm run gen:types). */
export type UsersSection = UsersDoc & Obj;
export type UserSpec = User;

/** What the document names, or (without `desired`) every user. */
function readUsers(ctx: ReadContext, desired?: UsersSection): UsersSection {
  const all = desired === undefined;
  const acc = readAccounts(ctx.settings, { strictRoot: true });
  const { uidMin } = loginDefs(ctx.settings);
  const named = desired?.users ?? {};
  const out: Record<string, UserSpec> = {};
  const names = all ? [...acc.users.keys()] : Object.keys(named);
  const memberOf = new Map<string, string[]>();
  for (const [g, ms] of acc.members) for (const m of ms) memberOf.set(m, [...(memberOf.get(m) ?? []), g]);
  for (const name of names) {
    const u = acc.users.get(name);
    if (!u) continue;
    const want: UserSpec = named[name] ?? {};
    const cur: UserSpec = {
      uid: u.uid,
      group: acc.nameByGid.get(u.gid) ?? String(u.gid),
      home: u.home,
      shell: u.shell,
      comment: u.comment,
      system: u.uid < uidMin,
    };
    const have = memberOf.get(name) ?? [];
    if (all) {
      if (have.length) cur.groups = [...have].sort();
    } else if (Array.isArray(want.groups)) cur.groups = want.groups.filter((g) => have.includes(g));
    // creation-time switch, not host state
    if (want.create_home !== undefined) cur.create_home = want.create_home;
    out[name] = cur;
  }
  return { users: out };
}

export function planUser(d: ResourceDiff): Change<ShadowChangeData>[] {
  const name = d.name;
  const change = (action: string, summary: string, cmds: ShadowChangeData['cmds']) =>
    resourceChange<ShadowChangeData>(d, action, summary, { name, cmds });
  if (d.action === 'delete')
    return [change('delete', 'remove user (home directory kept)', [{ cmd: 'userdel', args: [name] }])];
  const want = d.desired as UserSpec;
  const cur = d.current as UserSpec | undefined;
  const after = [...(want.group ? [want.group] : []), ...(want.groups ?? [])].map((g) => `groups/groups/${g}`);
  const opt = (args: string[], s: UserSpec) => {
    if (s.uid !== undefined) args.push('-u', String(s.uid));
    if (s.group !== undefined) args.push('-g', s.group);
    if (s.home !== undefined) args.push('-d', s.home);
    if (s.shell !== undefined) args.push('-s', s.shell);
    if (s.comment !== undefined) args.push('-c', s.comment);
    return args;
  };
  if (!cur) {
    const args = opt([], want);
    if (want.system) args.push('-r');
    args.push(want.create_home ? '-m' : '-M');
    if (want.groups?.length) args.push('-G', want.groups.join(','));
    const what = [
      want.uid !== undefined ? `uid ${want.uid}` : '',
      want.groups?.length ? `groups ${want.groups.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const summary = `create${want.system ? ' system' : ''} user${what ? ` (${what})` : ''}`;
    return [{ ...change('create', summary, [{ cmd: 'useradd', args: [...args, name] }]), after }];
  }
  const parts: string[] = [];
  const delta: UserSpec = {};
  for (const k of ['uid', 'group', 'home', 'shell', 'comment'] as const) {
    if (want[k] !== undefined && want[k] !== cur[k]) {
      parts.push(`${k} ${JSON.stringify(cur[k])} → ${JSON.stringify(want[k])}`);
      (delta as Record<string, unknown>)[k] = want[k];
    }
  }
  const cmds: ShadowChangeData['cmds'] = [];
  if (parts.length) cmds.push({ cmd: 'usermod', args: [...opt([], delta), name] });
  const add = (want.groups ?? []).filter((g) => !(cur.groups ?? []).includes(g));
  if (add.length) {
    parts.push(`add to ${add.join(', ')}`);
    cmds.push({ cmd: 'usermod', args: ['-a', '-G', add.join(','), name] });
  }
  if (want.system !== undefined && want.system !== cur.system) {
    parts.push(`system ${String(cur.system)} → ${String(want.system)}`);
    const refused = `user ${name} exists as a ${cur.system ? 'system' : 'regular'} user (uid ${cur.uid}); the system flag is set at creation only`;
    const refusedHint = 'remove the resource first (state: absent), or drop the field';
    return [{ ...change('update', parts.join(', '), cmds), after, refused, refusedHint }];
  }
  if (!cmds.length) return [];
  return [{ ...change('update', parts.join(', '), cmds), after }];
}

const plugin: Plugin<UsersSection, ShadowChangeData> = {
  ...sectionSpec(manifest),
  ...shadowPlugin('users', ['useradd', 'usermod', 'userdel'], readUsers),
  plan: planUser,
};

export default plugin;
