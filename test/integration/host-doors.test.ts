/**
 * Paths cannot be turned against root (issue 22, point 3): every plugin that writes paths,
 * run as a user runs it (the built CLI) against the attacks it used to fall for. The attacker
 * is uid 65534, who owns a directory on the way; the target is a directory the test made
 * outside, holding a root-only file that must keep its content, mode and owner.
 * - a --root whose `etc` is a link to that directory: files, dns, sysctl, kmod, systemd unit
 *   files and drop-ins, lxc config, users and groups write nothing there (pci: a root whose
 *   `sys` is a link to a fake sysfs tree);
 * - a parent directory swapped for a link by its owner (no --root): files (write, directory,
 *   link, delete, chmod/chown), systemd's unit directory, lxc's lxcpath, a user's home;
 * - a file swapped for a link between read and apply: chmod/chown do not follow it (the files
 *   plugin itself, read and apply with the swap in between).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { doc, opd, tmp, uniq } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { cleanupAccounts, passwdEntry } from '../helpers/accounts.js';
import files from '../../src/plugins/files/index.js';
import { ApplyContext, type Change } from '../../src/core/plugin.js';
import { diffSection } from '../../src/core/diff.js';

const work = tmp('opd-doors-');
const USER = 65534;
const u = uniq(5);
const ACCOUNT = `opdd${u}`;
const UNIT = `opd-doors-${u}.service`;
let cases = 0;

beforeAll(async () => {
  await ensureSystemd();
});
afterAll(async () => {
  await cleanupAccounts([ACCOUNT, `${ACCOUNT}h`], [`${ACCOUNT}g`]);
  rmSync(work, { recursive: true, force: true });
});

/** A directory outside with a root-only file, and a check that nothing there changed. */
function outsideDir(base: string) {
  const outside = join(base, 'outside');
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret'), 'root only\n', { mode: 0o600 });
  return {
    outside,
    untouched() {
      expect(readdirSync(outside)).toEqual(['secret']);
      const st = statSync(join(outside, 'secret'));
      expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o600, 0, 0]);
      expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('root only\n');
    },
  };
}

/** A sandbox root whose etc is a link to the outside directory. */
function linkedEtcRoot() {
  const base = join(work, `root${++cases}`);
  const root = join(base, 'root');
  mkdirSync(root, { recursive: true });
  const o = outsideDir(base);
  symlinkSync(o.outside, join(root, 'etc'));
  const env = { OPD_ROOT: root, OPD_AUDIT_LOG: join(base, 'audit.jsonl') };
  return { base, root, env, ...o };
}

const state = (plugins: string) => `version: 1\nplugins:\n${plugins}`;

async function refused(env: Record<string, string>, base: string, plugins: string, name = 'state.yaml') {
  const r = await opd(['apply', doc(state(plugins), base, name)], { env });
  expect(r.code, r.stdout + r.stderr).toBe(1);
  expect(r.stdout + r.stderr).toMatch(/is a symbolic link/);
  return r.stdout + r.stderr;
}

describe('a --root whose etc is a link to a directory outside the root', () => {
  it('files: no write, directory, link, chmod/chown or delete lands outside', async () => {
    const s = linkedEtcRoot();
    const out = await refused(
      s.env,
      s.base,
      [
        '  files:',
        '    paths:',
        '      /etc/app.conf: { content: "root writes this" }',
        '      /etc/app.d: { type: directory }',
        '      /etc/current: { target: app.conf }',
        `      /etc/secret: { content: "root only\\n", mode: "0666", owner: "${USER}" }`,
        '',
      ].join('\n'),
    );
    expect(out).toContain('leads outside the root');
    await refused(s.env, s.base, '  files:\n    paths:\n      /etc/secret: { state: absent }\n', 'absent.yaml');
    s.untouched();
  });

  it('dns: resolv.conf is not written outside', async () => {
    const s = linkedEtcRoot();
    await refused(s.env, s.base, '  dns:\n    resolvers:\n      system: { servers: [192.0.2.53] }\n');
    s.untouched();
  });

  it('sysctl: the persistence file is not written outside (the runtime value is the kernel’s own)', async () => {
    const s = linkedEtcRoot();
    const value = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
    await refused(
      s.env,
      s.base,
      `  sysctl:\n    keys:\n      net.ipv4.ip_forward: { value: ${value}, persist: true }\n`,
    );
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe(value);
    s.untouched();
  });

  it('kmod: modules-load.d and modprobe.d files are not written outside', async () => {
    const s = linkedEtcRoot();
    await refused(s.env, s.base, `  kmod:\n    modules:\n      opd_doors_${u}: { persist: true, options: "x=1" }\n`);
    s.untouched();
  });

  it('systemd: unit files and drop-ins go under the root, so not outside', async () => {
    const s = linkedEtcRoot();
    await refused(
      s.env,
      s.base,
      [
        '  systemd:',
        '    units:',
        `      ${UNIT}:`,
        '        unit_file: "[Service]\\nExecStart=/bin/true\\n"',
        '        dropins: { 10-x.conf: "[Service]\\nEnvironment=A=1\\n" }',
        '',
      ].join('\n'),
    );
    s.untouched();
    expect(existsSync(`/etc/systemd/system/${UNIT}`)).toBe(false);
  });

  it('lxc: the lxcpath under the root is refused before lxc-create runs', async () => {
    const s = linkedEtcRoot();
    const env = { ...s.env, OPD_LXC_PATH: '/etc/lxc' };
    await refused(env, s.base, `  lxc:\n    containers:\n      d${u}: { template: busybox, network: [] }\n`);
    s.untouched();
  });

  it('users and groups: shadow-utils --prefix does not write the account files outside', async () => {
    const s = linkedEtcRoot();
    writeFileSync(join(s.outside, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(s.outside, 'group'), 'root:x:0:\n');
    const files_ = () =>
      Object.fromEntries(['passwd', 'group'].map((f) => [f, readFileSync(join(s.outside, f), 'utf8')]));
    const before = files_();
    await refused(s.env, s.base, `  users:\n    users:\n      ${ACCOUNT}: { uid: 4711 }\n`);
    await refused(s.env, s.base, `  groups:\n    groups:\n      ${ACCOUNT}g: { gid: 4712 }\n`, 'groups.yaml');
    expect(files_()).toEqual(before);
    expect(readdirSync(s.outside).sort()).toEqual(['group', 'passwd', 'secret']);
    expect(passwdEntry(ACCOUNT)).toBeUndefined();
  });
});

describe('a --root whose sys is a link to a fake sysfs tree outside the root', () => {
  it('pci: driver_override, unbind and bind are not written outside', async () => {
    const base = join(work, `sys${++cases}`);
    const root = join(base, 'root');
    const outside = join(base, 'outside');
    const dev = join(outside, 'bus/pci/devices/0000:01:00.0');
    mkdirSync(dev, { recursive: true });
    mkdirSync(root, { recursive: true });
    for (const drv of ['nouveau', 'vfio-pci']) {
      mkdirSync(join(outside, 'bus/pci/drivers', drv), { recursive: true });
      for (const f of ['bind', 'unbind']) writeFileSync(join(outside, 'bus/pci/drivers', drv, f), '');
    }
    writeFileSync(join(outside, 'bus/pci/drivers_probe'), '');
    writeFileSync(join(dev, 'vendor'), '0x10de\n');
    writeFileSync(join(dev, 'device'), '0x1b80\n');
    writeFileSync(join(dev, 'driver_override'), '(null)\n');
    symlinkSync('../../../drivers/nouveau', join(dev, 'driver'));
    symlinkSync(outside, join(root, 'sys'));
    const snapshot = () =>
      ['devices/0000:01:00.0/driver_override', 'drivers/nouveau/unbind', 'drivers/vfio-pci/bind', 'drivers_probe'].map(
        (f) => readFileSync(join(outside, 'bus/pci', f), 'utf8'),
      );
    const before = snapshot();
    await refused(
      { OPD_ROOT: root, OPD_AUDIT_LOG: join(base, 'audit.jsonl') },
      base,
      '  pci:\n    devices:\n      "0000:01:00.0": { driver_override: vfio-pci, driver: vfio-pci }\n',
    );
    expect(snapshot()).toEqual(before);
  });
});

describe('a parent directory its owner swapped for a link (no --root)', () => {
  /** <base>/home is root's, <base>/home/user the user's; the user swaps user/sub for a link to outside. */
  function planted() {
    const base = join(work, `planted${++cases}`);
    const user = join(base, 'home/user');
    mkdirSync(join(user, 'sub'), { recursive: true });
    chownSync(user, USER, USER);
    chownSync(join(user, 'sub'), USER, USER);
    writeFileSync(join(user, 'sub/secret'), 'the user’s own');
    const o = outsideDir(base);
    const swap = () => {
      renameSync(join(user, 'sub'), join(user, 'old'));
      symlinkSync(o.outside, join(user, 'sub'));
    };
    return { base, sub: join(user, 'sub'), swap, env: { OPD_AUDIT_LOG: join(base, 'audit.jsonl') }, ...o };
  }

  it('files: after the swap, no write, directory, link, chmod/chown or delete lands at the link’s target', async () => {
    const s = planted();
    const paths = [
      `      ${s.sub}/app.conf: { content: "root writes this" }`,
      `      ${s.sub}/app.d: { type: directory }`,
      `      ${s.sub}/current: { target: /etc/shadow }`,
      `      ${s.sub}/secret: { content: "root only\\n", mode: "0666", owner: "${USER}" }`,
    ];
    s.swap();
    await refused(s.env, s.base, `  files:\n    paths:\n${paths.join('\n')}\n`);
    await refused(s.env, s.base, `  files:\n    paths:\n      ${s.sub}/secret: { state: absent }\n`, 'absent.yaml');
    s.untouched();
  });

  it('systemd: a unit directory below the link gets no unit file or drop-in', async () => {
    const s = planted();
    s.swap();
    const env = { ...s.env, OPD_SYSTEMD_UNIT_DIR: join(s.sub, 'system') };
    await refused(
      env,
      s.base,
      `  systemd:\n    units:\n      ${UNIT}:\n        unit_file: "[Service]\\nExecStart=/bin/true\\n"\n        dropins: { 10-x.conf: "[Service]\\n" }\n`,
    );
    s.untouched();
  });

  it('lxc: an lxcpath below the link is refused before lxc-create runs', async () => {
    const s = planted();
    s.swap();
    const env = { ...s.env, OPD_LXC_PATH: join(s.sub, 'lxc') };
    await refused(env, s.base, `  lxc:\n    containers:\n      d${u}: { template: busybox, network: [] }\n`);
    s.untouched();
  });

  it('users: a home directory below the link is refused before useradd runs', async () => {
    const s = planted();
    s.swap();
    await refused(
      s.env,
      s.base,
      `  users:\n    users:\n      ${ACCOUNT}h: { home: ${s.sub}/home, create_home: true }\n`,
    );
    expect(passwdEntry(`${ACCOUNT}h`)).toBeUndefined();
    s.untouched();
  });
});

describe('a file swapped for a link between read and apply', () => {
  it('makes the files plugin’s chmod/chown refuse instead of following the link', async () => {
    const base = join(work, 'swap');
    const dir = join(base, 'srv');
    mkdirSync(dir, { recursive: true });
    chownSync(dir, USER, USER);
    const o = outsideDir(base);
    const p = join(dir, 'app.conf');
    writeFileSync(p, 'x', { mode: 0o600 });
    const settings = {};
    const log = pino({ level: 'silent' });
    const desired = {
      paths: { [p]: { type: 'file' as const, mode: '0666', owner: String(USER), group: String(USER) } },
    };
    // read and plan: a mode and owner change of a file
    const current = await files.read({ settings, log }, desired);
    const changes = diffSection(files, desired, current, false).flatMap((d) => files.plan(d)) as Change<never>[];
    expect(changes.map((c) => c.summary)).toEqual([
      expect.stringMatching(/^mode 0600 → 0666, owner 0 → 65534, group 0 → 65534$/),
    ]);
    // the user swaps the file for a link to a root-only file
    rmSync(p);
    symlinkSync(join(o.outside, 'secret'), p);
    const results = await files.apply!(ApplyContext.create(settings, log, false), changes);
    expect(results).toEqual([
      expect.objectContaining({
        status: 'failed',
        error: expect.objectContaining({ kind: 'refused', message: expect.stringMatching(/is a symbolic link/) }),
      }),
    ]);
    o.untouched();
  });
});
