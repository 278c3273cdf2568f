/**
 * groups: local groups (gid, system) and supplementary membership. `members` only adds: users
 * in the group that the document does not name stay; `members_absent` removes named users.
 * Reads: one read of /etc/group and /etc/passwd (under --root when given). Apply: groupadd,
 * groupmod -a -U, gpasswd -d, groupmod -g, groupdel.
 */
import { liftShorthand } from '../../core/shorthand.js';
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import type { Change, Obj, Plugin, ReadContext, ResourceDiff } from '../../core/plugin.js';
import { resourceChange } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import type { GroupsDoc, Group } from './section.gen.js';
import { readAccounts } from '../../core/hostfs.js';
import { loginDefs, shadowPlugin, type ShadowChangeData } from '../../host/shadow.js';

/** The section's types, generated from schema/groups.schema.json (npm run gen:types). */
export type GroupsSection = GroupsDoc & Obj;
export type GroupSpec = Group;

type GroupChangeData = ShadowChangeData;

/** What the document names, or (without `desired`) every group. */
function readGroups(ctx: ReadContext, desired?: GroupsSection): GroupsSection {
  const all = desired === undefined;
  const acc = readAccounts(ctx.settings, { strictRoot: true });
  const { gidMin } = loginDefs(ctx.settings);
  const out: Record<string, GroupSpec> = {};
  const named = desired?.groups ?? {};
  const names = all ? [...acc.groups.keys()] : Object.keys(named);
  for (const name of names) {
    const g = acc.groups.get(name);
    if (!g) continue;
    const want: GroupSpec = named[name] ?? {};
    const have = acc.members.get(name) ?? [];
    const cur: GroupSpec = { gid: g.gid, system: g.gid < gidMin };
    if (all) {
      if (have.length) cur.members = [...have].sort();
    } else {
      // projection onto what the document names: only the named members that are in (or out)
      if (Array.isArray(want.members)) cur.members = want.members.filter((m) => have.includes(m));
      if (Array.isArray(want.members_absent)) cur.members_absent = want.members_absent.filter((m) => !have.includes(m));
    }
    out[name] = cur;
  }
  return { groups: out };
}

export function planGroup(d: ResourceDiff): Change<GroupChangeData>[] {
  const name = d.name;
  if (d.action === 'delete')
    return [resourceChange(d, 'delete', 'remove group', { name, cmds: [{ cmd: 'groupdel', args: [name] }] })];
  const want = d.desired as GroupSpec;
  const cur = d.current as GroupSpec | undefined;
  const out: Change<GroupChangeData>[] = [];
  if (!cur) {
    const args: string[] = [];
    if (want.gid !== undefined) args.push('--gid', String(want.gid));
    if (want.system) args.push('--system');
    const summary = `create${want.system ? ' system' : ''} group${want.gid !== undefined ? ` (gid ${want.gid})` : ''}`;
    out.push({
      ...resourceChange(d, 'create', summary, { name, cmds: [{ cmd: 'groupadd', args: [...args, name] }] }),
      ops: d.ops.filter((o) => !o.path.startsWith('/members')),
    });
  } else {
    const parts: string[] = [];
    const cmds: GroupChangeData['cmds'] = [];
    let refused: string | undefined;
    if (want.gid !== undefined && want.gid !== cur.gid) {
      parts.push(`gid ${cur.gid} → ${want.gid}`);
      cmds.push({ cmd: 'groupmod', args: ['--gid', String(want.gid), name] });
    }
    if (want.system !== undefined && want.system !== cur.system) {
      parts.push(`system ${String(cur.system)} → ${String(want.system)} (cannot change: set at creation)`);
      refused = `group ${name} exists as a ${cur.system ? 'system' : 'regular'} group; the system flag is set at creation only (remove the group first, or drop system: from the document)`;
    }
    if (parts.length)
      out.push({
        ...resourceChange(d, 'update', parts.join(', '), { name, cmds }),
        ...(refused ? { refused, refusedHint: 'remove the resource first (state: absent), or drop the field' } : {}),
        ops: d.ops.filter((o) => !o.path.startsWith('/members')),
      });
  }
  const add = (want.members ?? []).filter((m) => !(cur?.members ?? []).includes(m));
  const del = (want.members_absent ?? []).filter((m) => !(cur?.members_absent ?? []).includes(m));
  if (add.length || del.length) {
    const cmds: GroupChangeData['cmds'] = [];
    if (add.length) cmds.push({ cmd: 'groupmod', args: ['--append', '--users', add.join(','), name] });
    for (const u of del) cmds.push({ cmd: 'gpasswd', args: ['--delete', u, name] });
    const summary = [add.length ? `add ${add.join(', ')}` : '', del.length ? `remove ${del.join(', ')}` : '']
      .filter(Boolean)
      .join('; ');
    out.push({
      ...resourceChange(d, 'update', summary, { name, cmds }),
      address: `${d.address}/members`,
      // after the group itself and after the users it adds (exact addresses: never the users' own membership changes)
      after: [d.address, ...add.map((u) => `users/users/${u}`)],
      ops: d.ops.filter((o) => o.path.startsWith('/members')),
    });
  }
  return out;
}

const plugin: Plugin<GroupsSection, GroupChangeData> = {
  ...sectionSpec(manifest),
  ...shadowPlugin('groups', ['groupadd', 'groupmod', 'groupdel', 'gpasswd'], readGroups),

  normalize(section, ctx) {
    // shorthand of the design page: groups: { libvirt: { members: [alice] } }
    if (!isObj(section)) return section;
    const { out, entries, lifted } = liftShorthand(section, 'groups', 'groups', ctx, (_k, v) =>
      isObj(v) ? v : undefined,
    );
    if (lifted || isObj(section.groups)) out.groups = entries;
    return out;
  },

  plan: planGroup,
};

export default plugin;
