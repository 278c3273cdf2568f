/**
 * shadow-utils (useradd, usermod, userdel, groupadd, groupmod, groupdel, gpasswd) through
 * the mutate door of src/exec.ts, shared by the users and groups plugins (a plugin never
 * imports another). Under --root the account database of that directory is changed
 * (`--prefix DIR`, or `--root DIR` for gpasswd, which has no --prefix).
 */
import type { ApplyContext, Change, DoctorCheck, Plugin, ReadContext, Settings } from '../core/plugin.js';
import { applyEach, assertApplyContext } from '../core/plugin.js';
import { ExecFailure, runMutate } from '../exec.js';
import { OpdError } from '../core/errors.js';
import { checkToolPaths, hostPath, isSafePath, rootOf, readText } from '../core/hostfs.js';
import { watchPaths } from '../core/watch-paths.js';
import { posix } from 'node:path';
import { accessSync, constants } from 'node:fs';

/** The payload of a users or groups change: the shadow-utils commands that make it, in order. */
export interface ShadowChangeData {
  name: string;
  cmds: { cmd: string; args: string[] }[];
}

/** The apply of users and groups: each change's commands, one after another. */
const applyShadow = applyEach<ShadowChangeData>(async (ctx, c: Change<ShadowChangeData>) => {
  for (const { cmd, args } of c.data!.cmds) await shadow(ctx, cmd, args, c.address);
});

/** The account files shadow-utils writes (with their backup, temp and lock names), under --prefix when given. */
export const ACCOUNT_FILES = ['passwd', 'shadow', 'group', 'gshadow', 'subuid', 'subgid'].flatMap((f) =>
  ['', '-', '+', '.lock'].map((s) => `/etc/${f}${s}`),
);

export async function shadow(ctx: ApplyContext, cmd: string, args: string[], address: string): Promise<void> {
  assertApplyContext(ctx);
  const root = rootOf(ctx.settings);
  // the tool opens these itself (under --prefix): no link on the way, none at the end
  const d = args.indexOf('-d');
  const home = d >= 0 && args[d + 1] ? posix.normalize(args[d + 1]).replace(/(.)\/+$/, '$1') : '';
  checkToolPaths(ctx, ['/etc', ...ACCOUNT_FILES, ...(isSafePath(home) ? [home] : [])], cmd);
  const pre = root ? (cmd === 'gpasswd' ? ['--root', root] : ['--prefix', root]) : [];
  try {
    // groupdel exit 6: the group is already gone (userdel removed a user's own group in the same run);
    // groupadd/useradd exit 9: it exists already, made since the plan by another change of the same
    // run (a package's script: libvirt-daemon-system adds the libvirt group); the verification
    // that follows compares it with the document
    await runMutate(ctx, cmd, [...pre, ...args], {
      backend: cmd,
      installHint: 'install the passwd package (shadow-utils)',
      okCodes: cmd === 'groupdel' ? [0, 6] : cmd === 'groupadd' || cmd === 'useradd' ? [0, 9] : [0],
    });
  } catch (e) {
    if (e instanceof ExecFailure) {
      const why = e.stderr.trim().split('\n').slice(0, 2).join(' / ') || `exit ${e.exitCode_}`;
      // exit 10 of useradd/groupadd: the account files are locked by another tool
      throw new OpdError(e.exitCode_ === 10 ? 'backend-busy' : 'backend-failed', `${e.command} failed: ${why}`, {
        address,
        hint: `check the name and ids in the document; run \`${e.command}\` by hand to see the whole message`,
      });
    }
    throw e;
  }
}

/** UID_MIN / GID_MIN of login.defs (system accounts are below). */
export function loginDefs(settings: Settings): { uidMin: number; gidMin: number } {
  const root = rootOf(settings);
  const text = (root ? readText(root + '/etc/login.defs') : undefined) ?? readText('/etc/login.defs') ?? '';
  const get = (k: string, d: number) => {
    const m = new RegExp(`^\\s*${k}\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : d;
  };
  return { uidMin: get('UID_MIN', 1000), gidMin: get('GID_MIN', 1000) };
}

/** Which shadow-utils tools are on PATH (no processes: a PATH lookup). */
function shadowDoctor(name: string, tools: string[], settings: Settings): DoctorCheck[] {
  const dirs = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  const missing = tools.filter(
    (t) =>
      !dirs.some((d) => {
        try {
          accessSync(`${d}/${t}`, constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
  const root = rootOf(settings);
  return [
    missing.length
      ? { name, ok: false, detail: `missing: ${missing.join(', ')}`, hint: 'install the passwd package (shadow-utils)' }
      : { name, ok: true, detail: `${tools.join(', ')} found${root ? `; accounts under ${root} (--prefix)` : ''}` },
  ];
}

/**
 * What the users and groups plugins share: `read(ctx, desired)` reads what the document names
 * (without `desired`: every account, for show); apply and doctor go through shadow-utils.
 */
export function shadowPlugin<S extends object>(
  name: string,
  tools: string[],
  read: (ctx: ReadContext, desired?: S) => S,
): Pick<Plugin<S, ShadowChangeData>, 'read' | 'apply' | 'show' | 'doctor' | 'watch'> {
  return {
    read: async (ctx, desired) => read(ctx, desired),
    // the account databases (shadow's tools replace them by rename): inotify on their directory
    watch: async (ctx, onDrift) =>
      watchPaths(
        ['/etc/passwd', '/etc/shadow', '/etc/group', '/etc/gshadow'].map((f) => hostPath(ctx.settings, f)),
        () => onDrift(),
        ctx.log,
      ),
    apply: applyShadow,
    show: async (ctx) => read(ctx),
    doctor: async (ctx) => shadowDoctor(name, tools, ctx.settings),
  };
}
