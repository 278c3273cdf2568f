/**
 * The host doors (src/core/hostfs.ts, the walk in src/core/dirfd.ts) on real files in a temp
 * directory: every path under --root, no link on the way, O_NOFOLLOW at the end, mode and
 * owner on the descriptor, and the ApplyContext they need. The test runs as root (as opd does);
 * "the user" is uid/gid 65534 (nobody), who owns the directories an attacker would.
 */
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplyContext } from '../../../src/core/plugin.js';
import {
  checkToolPaths,
  makeDir,
  putFile,
  putSymlink,
  removePath,
  renamePath,
  setMeta,
  withTempFile,
  writeKernelFile,
} from '../../../src/core/hostfs.js';
import { Dir, openRoot, walkDir } from '../../../src/core/dirfd.js';

const log = pino({ level: 'silent' });
const work = mkdtempSync(join(tmpdir(), 'opd-hostfs-'));
let n = 0;
const USER = 65534;

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A fresh sandbox: <case>/root (the --root) and <case>/outside (where nothing may land). */
function sandbox() {
  const base = join(work, `case${++n}`);
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(root, { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret'), 'root only\n', { mode: 0o600 });
  const ctx = ApplyContext.create({ root }, log, false);
  const listOutside = () => readdirSync(outside).sort();
  const untouched = () => {
    expect(listOutside()).toEqual(['secret']);
    const st = statSync(join(outside, 'secret'));
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o600, 0, 0]);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('root only\n');
  };
  return { base, root, outside, ctx, untouched };
}

const noRoot = () => ApplyContext.create({}, log, false);

describe('the host doors under --root', () => {
  it('writes a file under the root with its parents, mode and owner set on the descriptor', async () => {
    const s = sandbox();
    await putFile(s.ctx, '/etc/app/app.conf', 'x=1\n', { mode: 0o640, uid: USER, gid: USER });
    const p = join(s.root, 'etc/app/app.conf');
    expect(readFileSync(p, 'utf8')).toBe('x=1\n');
    const st = statSync(p);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, USER, USER]);
    expect(statSync(join(s.root, 'etc/app')).isDirectory()).toBe(true);
    // no temp file is left behind
    expect(readdirSync(join(s.root, 'etc/app'))).toEqual(['app.conf']);
    s.untouched();
  });

  it('refuses every door when the root’s etc is a link to a directory outside, and writes nothing there', async () => {
    const s = sandbox();
    symlinkSync(s.outside, join(s.root, 'etc'));
    const refused = { kind: 'refused', message: expect.stringMatching(/\/etc under the root .* is a symbolic link/) };
    await expect(putFile(s.ctx, '/etc/x.conf', 'x')).rejects.toMatchObject(refused);
    await expect(putFile(s.ctx, '/etc/new/dir/x.conf', 'x')).rejects.toMatchObject(refused);
    expect(() => makeDir(s.ctx, '/etc/d')).toThrow(/leads outside the root/);
    expect(() => putSymlink(s.ctx, '/etc/l', '/x')).toThrow(/is a symbolic link/);
    expect(() => removePath(s.ctx, '/etc/secret')).toThrow(/is a symbolic link/);
    expect(() => setMeta(s.ctx, '/etc/secret', 'file', { mode: 0o666, uid: USER })).toThrow(/is a symbolic link/);
    expect(() => renamePath(s.ctx, '/etc/secret', '/moved')).toThrow(/is a symbolic link/);
    expect(() => checkToolPaths(s.ctx, ['/etc/passwd'], 'useradd')).toThrow(/is a symbolic link/);
    expect(() => writeKernelFile(s.ctx, '/sys/../etc/secret', 'x')).toThrow(/unsafe path/);
    s.untouched();
    expect(existsSync(join(s.root, 'moved'))).toBe(false);
  });

  it('keeps a relative link that climbs out of the root from leading a write there', async () => {
    const s = sandbox();
    mkdirSync(join(s.root, 'var'));
    symlinkSync('../../outside', join(s.root, 'var/lib'));
    await expect(putFile(s.ctx, '/var/lib/x', 'x')).rejects.toThrow(/leads outside the root/);
    s.untouched();
  });

  it('refuses a link below the root too, even one pointing inside it (name the real path)', async () => {
    const s = sandbox();
    mkdirSync(join(s.root, 'usr/lib'), { recursive: true });
    symlinkSync('usr/lib', join(s.root, 'lib'));
    await expect(putFile(s.ctx, '/lib/x.conf', 'x')).rejects.toMatchObject({
      kind: 'refused',
      hint: expect.stringContaining('name the real path'),
    });
    await putFile(s.ctx, '/usr/lib/x.conf', 'x');
    expect(readFileSync(join(s.root, 'usr/lib/x.conf'), 'utf8')).toBe('x');
  });

  it('rejects paths with . or .. segments before touching anything', async () => {
    const s = sandbox();
    await expect(putFile(s.ctx, '/etc/../../outside/x', 'x')).rejects.toMatchObject({ kind: 'invalid-document' });
    expect(() => removePath(s.ctx, 'relative')).toThrow(/unsafe path/);
    s.untouched();
  });
});

describe('the host doors against a link planted by the owner of a parent directory (no --root)', () => {
  /** /…/home is root's, /…/home/user is the user's, and the document names /…/home/user/sub/… */
  function planted() {
    const s = sandbox();
    const home = join(s.base, 'home');
    const user = join(home, 'user');
    mkdirSync(join(user, 'sub'), { recursive: true });
    chownSync(user, USER, USER);
    chownSync(join(user, 'sub'), USER, USER);
    writeFileSync(join(user, 'sub', 'f'), 'mine');
    // the user swaps sub for a link to the directory the test made outside
    renameSync(join(user, 'sub'), join(user, 'old'));
    symlinkSync(s.outside, join(user, 'sub'));
    return { ...s, ctx: noRoot(), sub: join(user, 'sub') };
  }

  it('neither writes, creates, links, removes, renames nor chmods/chowns at the link’s target', async () => {
    const s = planted();
    await expect(putFile(s.ctx, join(s.sub, 'f'), 'root writes')).rejects.toThrow(/is a symbolic link/);
    expect(() => makeDir(s.ctx, join(s.sub, 'd'))).toThrow(/is a symbolic link/);
    expect(() => putSymlink(s.ctx, join(s.sub, 'l'), '/etc/shadow')).toThrow(/is a symbolic link/);
    expect(() => removePath(s.ctx, join(s.sub, 'secret'))).toThrow(/is a symbolic link/);
    expect(() => removePath(s.ctx, join(s.sub, 'secret'), { recursive: true })).toThrow(/is a symbolic link/);
    expect(() => setMeta(s.ctx, join(s.sub, 'secret'), 'file', { mode: 0o666, uid: USER })).toThrow(
      /is a symbolic link/,
    );
    expect(() => renamePath(s.ctx, join(s.sub, 'secret'), join(s.base, 'stolen'))).toThrow(/is a symbolic link/);
    s.untouched();
    expect(existsSync(join(s.base, 'stolen'))).toBe(false);
  });

  it('removes the planted link itself when the document removes that path, never what it points to', () => {
    const s = planted();
    expect(removePath(s.ctx, s.sub, { recursive: true })).toBe('removed');
    expect(existsSync(s.sub)).toBe(false);
    s.untouched();
  });

  it('removes a tree without following a link inside it', () => {
    const s = sandbox();
    mkdirSync(join(s.root, 'tree/a/b'), { recursive: true });
    symlinkSync(s.outside, join(s.root, 'tree/a/b/out'));
    symlinkSync(join(s.outside, 'secret'), join(s.root, 'tree/a/secret'));
    expect(removePath(s.ctx, '/tree', { recursive: true })).toBe('removed');
    expect(existsSync(join(s.root, 'tree'))).toBe(false);
    s.untouched();
  });
});

describe('a final link swapped in between read and apply', () => {
  it('makes chmod/chown refuse instead of following it (the target keeps its mode and owner)', () => {
    const s = sandbox();
    const dir = join(s.root, 'srv');
    mkdirSync(dir);
    chownSync(dir, USER, USER);
    writeFileSync(join(dir, 'app.conf'), 'x');
    // read saw a file; the user replaces it by a link to a root-only file
    rmSync(join(dir, 'app.conf'));
    symlinkSync(join(s.outside, 'secret'), join(dir, 'app.conf'));
    let err: unknown;
    try {
      setMeta(s.ctx, '/srv/app.conf', 'file', { mode: 0o666, uid: USER, gid: USER });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      kind: 'refused',
      message: expect.stringMatching(/chmod\/chown \/srv\/app.conf: .* is a symbolic link/),
      hint: expect.stringContaining('the path changed since it was read'),
    });
    expect(() => setMeta(s.ctx, '/srv/app.conf', 'directory', { mode: 0o777 })).toThrow(/is a symbolic link/);
    s.untouched();
  });

  it('refuses a file that became a directory, and a hard link in a directory the user owns', () => {
    const s = sandbox();
    const dir = join(s.root, 'srv');
    mkdirSync(join(dir, 'was-file'), { recursive: true });
    chownSync(dir, USER, USER);
    expect(() => setMeta(s.ctx, '/srv/was-file', 'file', { mode: 0o600 })).toThrow(/is a directory now/);
    linkSync(join(s.outside, 'secret'), join(dir, 'hard'));
    expect(() => setMeta(s.ctx, '/srv/hard', 'file', { mode: 0o666, uid: USER })).toThrow(/2 hard links/);
    s.untouched();
  });

  it('sets mode and owner of a file, a directory and a link (lchown) in place', () => {
    const s = sandbox();
    mkdirSync(join(s.root, 'd'));
    writeFileSync(join(s.root, 'd/f'), 'x', { mode: 0o600 });
    symlinkSync(join(s.outside, 'secret'), join(s.root, 'd/l'));
    setMeta(s.ctx, '/d/f', 'file', { mode: 0o4755, uid: USER, gid: USER });
    setMeta(s.ctx, '/d', 'directory', { mode: 0o750, gid: USER });
    setMeta(s.ctx, '/d/l', 'symlink', { uid: USER });
    const f = statSync(join(s.root, 'd/f'));
    expect([f.mode & 0o7777, f.uid, f.gid]).toEqual([0o4755, USER, USER]);
    const d = statSync(join(s.root, 'd'));
    expect([d.mode & 0o7777, d.uid, d.gid]).toEqual([0o750, 0, USER]);
    expect(lstatSync(join(s.root, 'd/l')).uid).toBe(USER);
    s.untouched();
  });
});

describe('the walk holds each directory open', () => {
  it('keeps working in the directory it opened when that one is replaced by a link meanwhile', () => {
    const s = sandbox();
    mkdirSync(join(s.root, 'a/b'), { recursive: true });
    const base = openRoot(s.root);
    let d: Dir;
    try {
      d = walkDir(base, '/a/b', { what: 'write', target: '/a/b/x' });
    } finally {
      base.close();
    }
    try {
      // the race: after the walk, a/b is moved away and a link to outside takes its name
      renameSync(join(s.root, 'a/b'), join(s.root, 'a/moved'));
      symlinkSync(s.outside, join(s.root, 'a/b'));
      writeFileSync(d.at('x'), 'lands in the directory that was checked');
    } finally {
      d.close();
    }
    expect(readFileSync(join(s.root, 'a/moved/x'), 'utf8')).toBe('lands in the directory that was checked');
    s.untouched();
  });
});

describe('the other doors', () => {
  it('creates and replaces a link without following the old one, and renames within the root', async () => {
    const s = sandbox();
    putSymlink(s.ctx, '/etc/current', 'app.conf', { uid: USER });
    expect(readlinkSync(join(s.root, 'etc/current'))).toBe('app.conf');
    expect(lstatSync(join(s.root, 'etc/current')).uid).toBe(USER);
    symlinkSync(join(s.outside, 'secret'), join(s.root, 'etc/old'));
    await putFile(s.ctx, '/etc/old', 'replaced the link, not its target');
    expect(lstatSync(join(s.root, 'etc/old')).isFile()).toBe(true);
    renamePath(s.ctx, '/etc/old', '/var/new');
    expect(readFileSync(join(s.root, 'var/new'), 'utf8')).toBe('replaced the link, not its target');
    s.untouched();
  });

  it('removes only empty directories with ifEmpty, and says what happened', () => {
    const s = sandbox();
    mkdirSync(join(s.root, 'd/e'), { recursive: true });
    writeFileSync(join(s.root, 'd/f'), '');
    expect(removePath(s.ctx, '/d', { ifEmpty: true })).toBe('kept');
    expect(removePath(s.ctx, '/d/f', { ifEmpty: true })).toBe('kept');
    expect(() => removePath(s.ctx, '/d')).toThrow(/ENOTEMPTY: .*'.*\/root\/d'/);
    expect(removePath(s.ctx, '/d/e', { ifEmpty: true })).toBe('removed');
    expect(removePath(s.ctx, '/nothing/here')).toBe('absent');
    expect(removePath(s.ctx, '/d/f/below-a-file')).toBe('absent');
  });

  it('keeps the old file when validation fails, and leaves no temp file', async () => {
    const s = sandbox();
    await putFile(s.ctx, '/etc/v.conf', 'old');
    let seen = '';
    await expect(
      putFile(s.ctx, '/etc/v.conf', 'new', {
        validate: async (tmp) => {
          seen = readFileSync(tmp, 'utf8');
          throw new Error('invalid');
        },
      }),
    ).rejects.toThrow('invalid');
    expect(seen).toBe('new');
    expect(readFileSync(join(s.root, 'etc/v.conf'), 'utf8')).toBe('old');
    expect(readdirSync(join(s.root, 'etc'))).toEqual(['v.conf']);
  });

  it('writes a kernel file of the fake sysfs tree under --root, and refuses one that is not there or is a link', () => {
    const s = sandbox();
    mkdirSync(join(s.root, 'sys/bus/pci/drivers/vfio-pci'), { recursive: true });
    writeFileSync(join(s.root, 'sys/bus/pci/drivers/vfio-pci/bind'), 'previous value');
    writeKernelFile(s.ctx, '/sys/bus/pci/drivers/vfio-pci/bind', '0000:01:00.0');
    expect(readFileSync(join(s.root, 'sys/bus/pci/drivers/vfio-pci/bind'), 'utf8')).toBe('0000:01:00.0');
    expect(() => writeKernelFile(s.ctx, '/sys/bus/pci/drivers_probe', 'x')).toThrow(/ENOENT/);
    symlinkSync(join(s.outside, 'secret'), join(s.root, 'sys/bus/pci/drivers_probe'));
    expect(() => writeKernelFile(s.ctx, '/sys/bus/pci/drivers_probe', 'x')).toThrow(/ELOOP/);
    symlinkSync(s.outside, join(s.root, 'sys/bus/pci/devices'));
    expect(() => writeKernelFile(s.ctx, '/sys/bus/pci/devices/secret', 'x')).toThrow(/is a symbolic link/);
    expect(() => writeKernelFile(s.ctx, '/etc/x', 'x')).toThrow(/not under \/proc\/sys or \/sys/);
    s.untouched();
  });

  it('writes /proc/sys of the running kernel (its own value back) and refuses a key that does not exist', () => {
    const key = '/proc/sys/net/ipv4/ip_forward';
    const before = readFileSync(key, 'utf8');
    writeKernelFile(noRoot(), key, before);
    expect(readFileSync(key, 'utf8')).toBe(before);
    expect(() => writeKernelFile(noRoot(), '/proc/sys/net/ipv4/no_such_key_opd', '1')).toThrow(/ENOENT/);
  });

  it('gives a tool a private scratch file and removes it afterwards', async () => {
    let seen = '';
    const out = await withTempFile(noRoot(), 'definition.xml', '<domain/>', async (f) => {
      seen = f;
      expect(readFileSync(f, 'utf8')).toBe('<domain/>');
      expect(statSync(f).mode & 0o777).toBe(0o600);
      expect(statSync(join(f, '..')).mode & 0o777).toBe(0o700);
      return 42;
    });
    expect(out).toBe(42);
    expect(existsSync(join(seen, '..'))).toBe(false);
  });

  it('lets a tool have paths that are missing or real, and refuses a link at the end', () => {
    const s = sandbox();
    mkdirSync(join(s.root, 'etc'));
    writeFileSync(join(s.root, 'etc/passwd'), '');
    expect(() =>
      checkToolPaths(s.ctx, ['/etc', '/etc/passwd', '/etc/shadow', '/no/such/dir'], 'useradd'),
    ).not.toThrow();
    symlinkSync(join(s.outside, 'secret'), join(s.root, 'etc/shadow'));
    expect(() => checkToolPaths(s.ctx, ['/etc/shadow'], 'useradd')).toThrow(/useradd \/etc\/shadow: .* symbolic link/);
  });

  it('refuses every door outside an apply (no ApplyContext: dry run by construction)', async () => {
    const fake = { settings: {}, log } as never;
    await expect(putFile(fake, '/x', 'x')).rejects.toThrow(/dry-run violation/);
    for (const f of [
      () => removePath(fake, '/x'),
      () => makeDir(fake, '/x'),
      () => setMeta(fake, '/x', 'file', {}),
      () => putSymlink(fake, '/x', 'y'),
      () => renamePath(fake, '/x', '/y'),
      () => writeKernelFile(fake, '/proc/sys/x', 'y'),
      () => checkToolPaths(fake, ['/x'], 't'),
    ])
      expect(f).toThrow(/dry-run violation/);
    await expect(withTempFile(fake, 'x', 'y', async () => 1)).rejects.toThrow(/dry-run violation/);
  });
});
