/**
 * The walk behind the host doors (core/hostfs.ts): a path is resolved one component at a time
 * from a directory held open, each directory opened with O_NOFOLLOW|O_DIRECTORY, so that no
 * component is a symbolic link and no component is looked up again by name after it was
 * checked. Node has no openat(2); Linux gives the same thing through /proc/self/fd: the name
 * `/proc/self/fd/<dirfd>/<name>` is resolved from the very directory the descriptor holds
 * (a magic link, followed even with O_NOFOLLOW, which only concerns the last component), however
 * that directory was renamed or replaced since. mkdir, unlink, rmdir, rename, symlink and
 * lchown take such names too, so every mutation is relative to a directory opd opened itself.
 */
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  statfsSync,
  type Stats,
} from 'node:fs';
import { posix } from 'node:path';
import { OpdError } from './errors.js';
import { ensureDir } from './fsutil.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
/** Links followed in one resolution at most (as the kernel's MAXSYMLINKS). */
const MAX_LINKS = 40;
export const PROC_SUPER_MAGIC = 0x9fa0;
export const SYSFS_MAGIC = 0x62656572;

/** A directory held open; names below it are resolved from it (`at(name)`), never from a path string. */
export class Dir {
  constructor(
    readonly fd: number,
    /** the path as the document names it (under the root), for messages */
    readonly docPath: string,
    /** the host path, for messages and for tools that take a path */
    readonly hostPath: string,
  ) {}
  /** The name of `name` inside this directory, resolved from the descriptor. */
  at(name: string): string {
    return name ? `/proc/self/fd/${this.fd}/${name}` : `/proc/self/fd/${this.fd}`;
  }
  child(name: string): { doc: string; host: string } {
    return { doc: joinDoc(this.docPath, name), host: joinDoc(this.hostPath, name) };
  }
  stat(): Stats {
    return fstatSync(this.fd);
  }
  /** The filesystem type of the directory (statfs through the descriptor). */
  fsType(): number {
    return Number(statfsSync(this.at('')).type);
  }
  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* closed */
    }
  }
}

const joinDoc = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

let procChecked = false;
function needProc(): void {
  if (procChecked) return;
  if (!existsSync('/proc/self/fd'))
    throw new OpdError(
      'backend-unavailable',
      'opd writes host files through /proc/self/fd, which does not exist here',
      {
        hint: 'mount /proc (mount -t proc proc /proc) before running opd apply',
      },
    );
  procChecked = true;
}

/** The errno of an error, or undefined. */
export const errno = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code;

/** The symlink refusal: which component is a link, where it points, and what to do instead. */
export function linkRefusal(what: string, docPath: string, linkDoc: string, target: string, root: string): OpdError {
  const under = root ? ` under the root ${root}` : '';
  // the kernel resolves an absolute target, and `..` past the top, outside the root
  const escapes =
    root && (target.startsWith('/') || posix.normalize(`.${posix.dirname(linkDoc)}/${target}`).startsWith('..'));
  return new OpdError(
    'refused',
    `${what} ${docPath}: ${linkDoc}${under} is a symbolic link (→ ${target})${escapes ? ', which leads outside the root' : ''}; opd does not write, remove, chmod or chown through a link`,
    {
      hint:
        linkDoc === docPath
          ? 'the path changed since it was read (it is a link now): check who replaced it, then run opd again'
          : `name the real path in the document instead of one under ${linkDoc}${root ? ', or make it a real directory inside the root' : ''} (a link in a directory another user may write can send root's writes anywhere)`,
    },
  );
}

/** Open the root of a walk: the sandbox root (the operator's own path, created when missing) or `/`. */
export function openRoot(root: string): Dir {
  needProc();
  const host = root || '/';
  try {
    return new Dir(openSync(host, O_RDONLY | O_DIRECTORY), '/', host);
  } catch (e) {
    if (errno(e) !== 'ENOENT' || !root) throw e;
    ensureDir(root, 0o755);
    return new Dir(openSync(host, O_RDONLY | O_DIRECTORY), '/', host);
  }
}

/** The components of an absolute, normalized document path. */
export function components(docPath: string): string[] {
  return docPath.split('/').filter(Boolean);
}

export interface WalkOptions {
  /** create missing directories with this mode (mkdir, so the umask applies) */
  create?: number;
  /**
   * Follow links that live on the kernel's own filesystems (sysfs, procfs), where no user can
   * make one: `/sys/bus/pci/devices/<addr>` are links. Every other link is refused.
   */
  kernelLinks?: boolean;
  /** what the caller does, for messages ("write", "remove"…) */
  what: string;
  /** the path the caller was given, for messages */
  target: string;
}

/**
 * Open the directory `docDir` below `base` (a root from openRoot): one component at a time,
 * each with O_NOFOLLOW|O_DIRECTORY from the one before. A link is refused (OpdError `refused`)
 * unless `kernelLinks` and it lives on sysfs/procfs; then its target is resolved from the
 * root again (an absolute target is the root's, `..` never climbs above it). A missing
 * component is created with `create`, else ENOENT is thrown. The caller closes the result.
 */
export function walkDir(base: Dir, docDir: string, o: WalkOptions): Dir {
  let rest = components(docDir);
  let cur = dup(base);
  let hops = 0;
  try {
    while (rest.length) {
      const name = rest[0];
      const next = openChild(cur, name, o);
      if (next instanceof Dir) {
        cur.close();
        cur = next;
        rest = rest.slice(1);
        continue;
      }
      // a link that may be followed: resolve its target from the root again
      if (++hops > MAX_LINKS)
        throw new OpdError('refused', `${o.what} ${o.target}: too many levels of symbolic links`, {
          hint: 'check the links on the way',
        });
      const resolved = posix.resolve(next.target.startsWith('/') ? '/' : cur.docPath, next.target);
      rest = [...components(resolved), ...rest.slice(1)];
      cur.close();
      cur = dup(base);
    }
    return cur;
  } catch (e) {
    cur.close();
    throw e;
  }
}

function dup(d: Dir): Dir {
  return new Dir(openSync(d.at(''), O_RDONLY | O_DIRECTORY), d.docPath, d.hostPath);
}

/** One step of a walk: the child directory, or a link to follow (kernelLinks), or an error. */
function openChild(cur: Dir, name: string, o: WalkOptions): Dir | { target: string } {
  const { doc, host } = cur.child(name);
  for (let attempt = 0; ; attempt++) {
    try {
      return new Dir(openSync(cur.at(name), DIR_FLAGS), doc, host);
    } catch (e) {
      const code = errno(e);
      if (code === 'ENOENT' && o.create !== undefined && attempt < 3) {
        try {
          mkdirSync(cur.at(name), o.create);
        } catch (m) {
          if (errno(m) !== 'EEXIST') throw m;
        }
        continue; // open what is there now: checked like any other component
      }
      if (code !== 'ENOTDIR' && code !== 'ELOOP') throw e;
      let st: Stats;
      try {
        st = lstatSync(cur.at(name));
      } catch {
        throw e;
      }
      if (!st.isSymbolicLink()) throw e; // a file where a directory should be: ENOTDIR
      const target = readlinkSync(cur.at(name));
      if (o.kernelLinks) {
        const t = cur.fsType();
        if (t === SYSFS_MAGIC || t === PROC_SUPER_MAGIC) return { target };
      }
      throw linkRefusal(o.what, o.target, doc, target, rootOfDir(cur));
    }
  }
}

/** The sandbox root a walk started from, for messages ('' for /). */
function rootOfDir(d: Dir): string {
  const host = d.hostPath;
  const doc = d.docPath;
  if (doc === '/') return host === '/' ? '' : host;
  return host.endsWith(doc) ? host.slice(0, host.length - doc.length) : '';
}
