/**
 * The lxc plugin against real LXC (busybox containers, privileged, an lxcpath of the test's
 * own) with a veth on a real Open vSwitch bridge (private ovsdb + ovs-vswitchd, netdev datapath).
 */
import { until } from '../helpers/wait.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, doc, tmp, uniq } from '../helpers/opd.js';
import { startLxc, type LxcSandbox } from '../helpers/lxc.js';

const u = uniq(4);
const BR = `lxb${u}`;
const C = `lxt-${u}`;
const VETH = `lxv${u}`;
const NONE = `lxn-${u}`;
const PEER = `lxp-${u}`;
const PEER_VETH = `lxw${u}`;

// real containers on a shared machine: a step can take a minute when the host is busy
vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

let sb: LxcSandbox;
const dir = tmp('opd-lxc-doc-');

interface Spec {
  memory?: string;
  running?: boolean;
  autostart?: boolean;
  absent?: boolean;
  allow?: boolean;
}

function state(s: Spec): string {
  const lines = [
    'version: 1',
    'plugins:',
    '  ovs:',
    '    bridges:',
    `      ${BR}: { datapath_type: netdev }`,
    '  lxc:',
    '    containers:',
    `      ${C}:`,
  ];
  if (s.absent) {
    lines.push('        state: absent');
    if (s.allow) lines.push('        allow_destroy: true');
  } else {
    lines.push(
      '        template: busybox',
      `        memory: ${s.memory ?? '64M'}`,
      `        network: [{ type: veth, link: ${BR}, name: ${VETH} }]`,
      '        config: { lxc.tty.max: 2 }',
    );
    if (s.running !== undefined) lines.push(`        running: ${s.running}`);
    if (s.autostart !== undefined) lines.push(`        autostart: ${s.autostart}`);
  }
  return lines.join('\n') + '\n';
}

const file = (s: Spec) => doc(state(s), dir, 'state.yaml');

async function lsState(): Promise<Record<string, { state: string; autostart: string }>> {
  const r = await sb.sh('lxc-ls', ['-P', sb.lxcPath, '-f', '-F', 'name,state,autostart']);
  const out: Record<string, { state: string; autostart: string }> = {};
  for (const l of r.stdout.split('\n').slice(1)) {
    const [n, st, a] = l.trim().split(/\s+/);
    if (n) out[n] = { state: st, autostart: a };
  }
  return out;
}

async function pid(): Promise<string> {
  return (await sb.sh('lxc-info', ['-P', sb.lxcPath, '-n', C, '-p', '-H'])).stdout.trim();
}

async function ifaceRow(name: string): Promise<string> {
  return sb.ovs.vsctl(['--columns=name,ofport,error', 'list', 'Interface', name]).catch(() => '');
}

/** Everything the plugin could touch, as text: the lxcpath's files, lxc-ls and the OVS database. */
async function dumpHost(): Promise<string> {
  const configs = existsSync(join(sb.lxcPath, C, 'config')) ? readFileSync(join(sb.lxcPath, C, 'config'), 'utf8') : '';
  const ls = (await sb.sh('lxc-ls', ['-P', sb.lxcPath, '-f', '-F', 'name,state,autostart,pid'])).stdout;
  return [configs, ls, await sb.ovs.dump()].join('\n----\n');
}

async function applyOk(path: string): Promise<string> {
  const r = await sb.opd(['apply', path]);
  expect(r.stderr + r.stdout).not.toContain('FAILED');
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.stdout;
}

async function noChanges(path: string): Promise<void> {
  const again = await sb.opd(['apply', path]);
  expect(again.code, again.stdout + again.stderr).toBe(0);
  expect(again.stdout).toContain('no changes');
  const d = await sb.opd(['diff', path]);
  expect(d.code, d.stdout + d.stderr).toBe(0);
}

beforeAll(async () => {
  sb = await startLxc();
});

afterAll(async () => {
  await sb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('lxc plugin on real LXC with an Open vSwitch bridge', () => {
  it('creates a busybox container with a veth on an OVS bridge and starts it', async () => {
    const f = file({ running: true, autostart: false });
    const d = await sb.opd(['diff', f]);
    expect(d.code, d.stdout + d.stderr).toBe(2);
    // the bridge comes first: the container's veth depends on ovs/bridges/<link>
    expect(d.stdout.indexOf(`ovs/bridges/${BR}`)).toBeLessThan(d.stdout.indexOf(`lxc/containers/${C}`));
    const out = await applyOk(f);
    expect(out).toContain(`+ lxc/containers/${C}`);
    expect(out).toContain(`lxc/containers/${C}/running: start`);
    expect((await lsState())[C].state).toBe('RUNNING');
    // LXC put the veth on the bridge and ovs-vswitchd accepted it
    const row = await ifaceRow(VETH);
    expect(row).toMatch(/ofport\s*:\s*[1-9]/);
    expect(row).toMatch(/error\s*:\s*\[\]/);
    const conf = readFileSync(join(sb.lxcPath, C, 'config'), 'utf8');
    expect(conf).toContain('lxc.apparmor.profile = unconfined');
    expect(conf).toContain(`lxc.net.0.link = ${BR}`);
    expect(conf).toContain('lxc.tty.max = 2');
    await noChanges(f);
  });

  it('carries traffic between two containers over the OVS bridge', async () => {
    const f = doc(
      [
        'version: 1',
        'plugins:',
        '  lxc:',
        '    containers:',
        `      ${PEER}: { template: busybox, running: true, network: [{ type: veth, link: ${BR}, name: ${PEER_VETH}, guest_name: eth0, ipv4: 10.251.77.2/24 }] }`,
      ].join('\n') + '\n',
      dir,
      'peer.yaml',
    );
    await applyOk(f);
    expect(readFileSync(join(sb.lxcPath, PEER, 'config'), 'utf8')).toContain('lxc.net.0.ipv4.address = 10.251.77.2/24');
    // busybox's rcS runs udhcpc, whose deconfig flushes the address LXC set: once udhcpc runs,
    // put the addresses back by hand (inside the containers' own network namespaces)
    for (const [c, ip] of [
      [C, '10.251.77.1/24'],
      [PEER, '10.251.77.2/24'],
    ]) {
      await until(
        async () => (await sb.sh('lxc-attach', ['-P', sb.lxcPath, '-n', c, '--', 'ps'])).stdout.includes('udhcpc'),
        `udhcpc running in ${c}`,
        60_000,
        100,
      );
      const add = await sb.sh('lxc-attach', [
        '-P',
        sb.lxcPath,
        '-n',
        c,
        '--',
        'ip',
        'addr',
        'replace',
        ip,
        'dev',
        'eth0',
      ]);
      expect(add.code, add.stderr).toBe(0);
    }
    const ping = await sb.sh('lxc-attach', [
      '-P',
      sb.lxcPath,
      '-n',
      C,
      '--',
      'ping',
      '-c',
      '3',
      '-W',
      '2',
      '10.251.77.2',
    ]);
    expect(ping.stdout, ping.stderr).toMatch(/[1-3] packets received/);
    const gone = doc(
      `version: 1\nplugins:\n  lxc:\n    containers:\n      ${PEER}: { state: absent, allow_destroy: true }\n`,
      dir,
      'peer-absent.yaml',
    );
    await applyOk(gone);
    expect(await sb.ovs.vsctl(['list-ports', BR])).not.toContain(PEER_VETH);
  });

  it('leaves the host byte-identical when opd diff has pending changes', async () => {
    const f = file({ memory: '128M', running: true, autostart: false });
    const before = await dumpHost();
    const d = await sb.opd(['diff', f]);
    expect(d.code, d.stdout + d.stderr).toBe(2);
    expect(d.stdout).toContain('memory 64M → 128M');
    expect(d.stdout).toContain('restart container (memory changed)');
    expect(await dumpHost()).toBe(before);
  });

  it('restarts a running container when its memory limit changes', async () => {
    const pid0 = await pid();
    const f = file({ memory: '128M', running: true, autostart: false });
    const out = await applyOk(f);
    expect(out).toContain('memory 64M → 128M');
    expect(out).toContain(`lxc/containers/${C}/running: restart`);
    const pid1 = await pid();
    expect(pid1).not.toBe(pid0);
    const limit = await sb.sh('lxc-cgroup', ['-P', sb.lxcPath, '-n', C, 'memory.limit_in_bytes']);
    expect(limit.stdout.trim()).toBe(String(128 * 1024 * 1024));
    // the veth is back on the bridge after the restart
    expect(await ifaceRow(VETH)).toMatch(/ofport\s*:\s*[1-9]/);
    await noChanges(f);
  });

  it('stops the container and LXC takes its veth off the bridge', async () => {
    const f = file({ memory: '128M', running: false, autostart: false });
    const out = await applyOk(f);
    expect(out).toContain(`lxc/containers/${C}/running: stop`);
    expect((await lsState())[C].state).toBe('STOPPED');
    expect(await sb.ovs.vsctl(['list-ports', BR])).not.toContain(VETH);
    await noChanges(f);
  });

  it('changes the memory limit of a stopped container without starting it', async () => {
    const f = file({ memory: '96M', running: false, autostart: false });
    const out = await applyOk(f);
    expect(out).toContain('memory 128M → 96M');
    expect(out).not.toContain('restart');
    expect((await lsState())[C].state).toBe('STOPPED');
    await noChanges(f);
  });

  it('sets the autostart flag', async () => {
    const f = file({ memory: '96M', running: false, autostart: true });
    const out = await applyOk(f);
    expect(out).toContain('autostart false → true');
    expect((await lsState())[C].autostart).toBe('1');
    expect(readFileSync(join(sb.lxcPath, C, 'config'), 'utf8')).toContain('lxc.start.auto = 1');
    await noChanges(f);
  });

  it('prints the lxcpath with opd show in a form that re-applies with zero changes', async () => {
    const r = await sb.opd(['show', '--plugin', 'lxc']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${C}:`);
    expect(r.stdout).toContain('memory: 96M');
    const shown = doc(r.stdout, dir, 'shown.yaml');
    const v = await sb.opd(['validate', shown]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    await noChanges(shown);
  });

  it('refuses to destroy a container without allow_destroy', async () => {
    const f = file({ absent: true });
    const d = await sb.opd(['diff', f]);
    expect(d.stdout).toContain('refused');
    const r = await sb.opd(['apply', f]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toContain('refused');
    expect(existsSync(join(sb.lxcPath, C, 'config'))).toBe(true);
    expect((await lsState())[C]).toBeDefined();
  });

  it('destroys the container and the rootfs it created when allowed', async () => {
    const f = file({ absent: true, allow: true });
    const out = await applyOk(f);
    expect(out).toContain(`- lxc/containers/${C}`);
    expect(out).toContain('rootfs');
    expect((await lsState())[C]).toBeUndefined();
    expect(existsSync(join(sb.lxcPath, C))).toBe(false);
    await noChanges(f);
  });

  it('never deletes a rootfs it did not create (template none)', async () => {
    const rootfs = join(sb.dir, `rootfs-${u}`);
    mkdirSync(join(rootfs, 'etc'), { recursive: true });
    writeFileSync(join(rootfs, 'etc', 'keep-me'), 'precious\n');
    const body = (extra: string) => `version: 1\nplugins:\n  lxc:\n    containers:\n      ${NONE}:\n${extra}`;
    const create = doc(
      body(`        template: none\n        rootfs: ${rootfs}\n        network: []\n        running: false\n`),
      dir,
      'none.yaml',
    );
    const out = await applyOk(create);
    expect(out).toContain(`+ lxc/containers/${NONE}: rootfs ${rootfs}`);
    expect(readFileSync(join(sb.lxcPath, NONE, 'config'), 'utf8')).toContain(`lxc.rootfs.path = dir:${rootfs}`);
    await noChanges(create);
    const gone = doc(body('        state: absent\n        allow_destroy: true\n'), dir, 'none-absent.yaml');
    const d = await sb.opd(['diff', gone]);
    expect(d.stdout).toContain('keeps its rootfs');
    await applyOk(gone);
    expect((await lsState())[NONE]).toBeUndefined();
    expect(existsSync(join(sb.lxcPath, NONE))).toBe(false);
    expect(readFileSync(join(rootfs, 'etc', 'keep-me'), 'utf8')).toBe('precious\n');
    await noChanges(gone);
  });

  it('accepts op-dbus containers[] entries', async () => {
    const f = doc(
      [
        'version: 1',
        'plugins:',
        '  lxc:',
        '    containers:',
        `      - id: "${u}100"`,
        `        veth: vi${u}`,
        `        bridge: ${BR}`,
        '        running: false',
        '        properties: { memory: 32, cores: 1, onboot: false }',
      ].join('\n') + '\n',
      dir,
      'opdbus.yaml',
    );
    const r = await sb.opd(['diff', f, '-o', 'json']);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    const plan = JSON.parse(r.stdout);
    const ch = plan.changes.find((c: { address: string }) => c.address === `lxc/containers/${u}100`);
    expect(ch.action).toBe('create');
    expect(ch.summary).toContain(`veth vi${u} on ${BR}`);
    expect(ch.summary).toContain('memory 32M');
  });

  it('creates a container from a Proxmox vztmpl archive named by an op-dbus template reference, and deletes the rootfs it unpacked', async () => {
    // a Proxmox storage (storage.cfg + <path>/template/cache) holding a root filesystem tarball
    const store = join(sb.dir, `pve-${u}`);
    const cache = join(store, 'template', 'cache');
    const tree = join(sb.dir, `tree-${u}`);
    mkdirSync(cache, { recursive: true });
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc', 'os-release'), 'ID=opd-test\n');
    const archive = join(cache, `bb-${u}.tar.zst`);
    expect((await sb.sh('tar', ['--zstd', '-cf', archive, '-C', tree, '.'])).code).toBe(0);
    const cfg = join(sb.dir, `storage-${u}.cfg`);
    writeFileSync(
      cfg,
      `dir: local\n\tpath /var/lib/vz\n\nbtrfs: teststore\n\tpath ${store}\n\tcontent rootdir,vztmpl\n`,
    );
    const env = { OPD_PVE_STORAGE_CFG: cfg };
    const run = (args: string[]) => sb.sh('node', [OPD, ...args], { env });
    const name = `${u}200`;
    const body = (props: string) =>
      [
        'version: 1',
        'plugins:',
        '  lxc:',
        '    containers:',
        `      - id: "${name}"`,
        '        running: false',
        `        properties: { ${props} }`,
      ].join('\n') + '\n';
    const f = doc(
      body(`template: "teststore:vztmpl/bb-${u}.tar.zst", hostname: arch${u}, cores: 2`),
      dir,
      'archive.yaml',
    );
    const r = await run(['apply', f]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(sb.lxcPath, name, 'rootfs', 'etc', 'os-release'), 'utf8')).toBe('ID=opd-test\n');
    const conf = readFileSync(join(sb.lxcPath, name, 'config'), 'utf8');
    expect(conf).toContain(`lxc.uts.name = arch${u}`);
    expect(conf).toContain('lxc.cgroup2.cpu.max = 200000 100000'); // 2 CPUs of time, not CPUs 0-1
    expect(conf).not.toContain('cpuset.cpus');
    const again = await run(['apply', f]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('no changes');
    // a reference to an archive that is not there is refused by name, and nothing is created
    const missing = doc(
      body(`template: "teststore:vztmpl/none-${u}.tar.zst"`).replace(name, `${name}x`),
      dir,
      'archive-missing.yaml',
    );
    const m = await run(['apply', missing]);
    expect(m.code).toBe(65);
    expect(m.stderr).toContain(
      `Proxmox template "teststore:vztmpl/none-${u}.tar.zst" is not on this host (looked in ${join(cache, `none-${u}.tar.zst`)}`,
    );
    expect(existsSync(join(sb.lxcPath, `${name}x`))).toBe(false);
    const gone = doc(
      [
        'version: 1',
        'plugins:',
        '  lxc:',
        '    containers:',
        `      "${name}": { state: absent, allow_destroy: true }`,
      ].join('\n') + '\n',
      dir,
      'archive-absent.yaml',
    );
    const g = await run(['apply', gone]);
    expect(g.code, g.stdout + g.stderr).toBe(0);
    expect(existsSync(join(sb.lxcPath, name))).toBe(false);
    expect(existsSync(archive)).toBe(true); // the archive is the host's: never deleted
  });

  it('keeps an intact audit trail', async () => {
    const r = await sb.opd(['audit', 'verify']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});
