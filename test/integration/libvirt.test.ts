/**
 * libvirt plugin against a real libvirtd (scripts/backends/libvirt.sh: libvirtd in a network
 * namespace of its own) running real guests: KVM where /dev/kvm is usable, QEMU's TCG elsewhere. Every object is named opd-t-<uniq>-….
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { doc, opd, ROOT, tmp, uniq } from '../helpers/opd.js';
import libvirt from '../../src/plugins/libvirt/index.js';
import { pino } from 'pino';
import { kvmUsable, virtType } from '../helpers/host.js';

const URI = 'qemu:///system';
/** kvm with a usable /dev/kvm, else qemu (TCG): guests run for real on both kinds of host. */
const VT = virtType();
const u = uniq(4);
const P = `opd-t-${u}`;
const NAT = `${P}-nat`;
const OVSNET = `${P}-ovs`;
const POOL = `${P}-pool`;
const VM = `${P}-vm`;
const RAW = `${P}-raw`;
const OVSVM = `${P}-ovsvm`;
const BR = `opdt${u}o`;
const dir = tmp('opd-libvirt-test-');
const poolPath = join(dir, 'pool');
// QEMU runs as libvirt-qemu: it must be able to reach the pool's images
chmodSync(dir, 0o755);
const env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_LIBVIRT_URI: URI };
const o3 = 200 + Math.floor(Math.random() * 50);
const o4 = Math.floor(Math.random() * 250);
const NET = `10.${o3}.${o4}`;

async function virsh(...args: string[]): Promise<string> {
  return (await execa('virsh', ['-c', URI, ...args])).stdout.trim();
}
async function virshMaybe(...args: string[]): Promise<string> {
  const r = await execa('virsh', ['-c', URI, ...args], { reject: false });
  return String(r.stdout).trim();
}

/** Everything this file created, as libvirt has it (for "opd diff changed nothing"). */
async function dump(): Promise<string> {
  const parts: string[] = [];
  for (const d of [VM, RAW, OVSVM])
    parts.push(
      await virshMaybe('dumpxml', '--inactive', d),
      await virshMaybe('domstate', d),
      await virshMaybe('list', '--all', '--name', '--autostart'),
    );
  for (const n of [NAT, OVSNET])
    parts.push(await virshMaybe('net-dumpxml', '--inactive', n), await virshMaybe('net-info', n));
  parts.push(
    await virshMaybe('pool-dumpxml', '--inactive', POOL),
    await virshMaybe('pool-info', POOL),
    await virshMaybe('vol-list', '--pool', POOL),
  );
  return parts.join('\n---\n');
}

function section(
  opts: {
    memory?: string;
    running?: boolean;
    rawMemory?: number;
    volume?: string;
    absent?: boolean;
    extra?: string;
  } = {},
): string {
  const running = opts.running ?? true;
  return `version: 1
plugins:
  libvirt:
    networks:
      ${NAT}:
        forward: nat
        ip: { address: ${NET}.1, netmask: 255.255.255.0, dhcp: { start: ${NET}.10, end: ${NET}.50 } }
        active: true
        autostart: true
      ${OVSNET}:
        forward: bridge
        bridge: ${BR}
        ovs: true
        active: true
        autostart: true
    pools:
      ${POOL}:
        type: dir
        path: ${poolPath}
        autostart: true
        volumes:
          disk0.qcow2: ${opts.volume ?? '{ capacity: 64M, format: qcow2 }'}
    domains:
      ${VM}:
        memory: ${opts.memory ?? '64M'}
        vcpus: 1
        disks:
          vda: { pool: ${POOL}, volume: disk0.qcow2, format: qcow2 }
        interfaces:
          - { network: ${NAT}, model: virtio }
        graphics: { type: vnc, port: auto }
        serial: pty
        running: ${running}
        shutdown_timeout: 2
      ${OVSVM}:
        memory: 64
        interfaces:
          - { ovs_bridge: ${BR}, vlan: 10 }
        running: false
      ${RAW}:
        running: false
        xml: |
          <domain type='${VT}'>
            <name>${RAW}</name>
            <memory unit='MiB'>${opts.rawMemory ?? 64}</memory>
            <vcpu>1</vcpu>
            <os><type arch='x86_64'>hvm</type></os>
            <devices>
              <serial type='pty'/>
              <console type='pty'/>
              <graphics type='vnc' port='-1'/>
            </devices>
          </domain>
${opts.extra ?? ''}`;
}

async function applyTwice(text: string, args: string[] = []): Promise<void> {
  const f = doc(text, dir);
  const r = await opd(['apply', f, ...args], { env });
  expect(r.stderr + r.stdout).not.toMatch(/FAILED/);
  expect(r.code).toBe(0);
  const again = await opd(['apply', f], { env });
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/no changes/);
  const d = await opd(['diff', f], { env });
  expect(d.code).toBe(0);
}

beforeAll(async () => {
  // a missing backend fails the tests (no skip)
  await execa('bash', [join(ROOT, 'scripts/backends/libvirt.sh'), 'up']);
});

afterAll(async () => {
  for (const d of [VM, RAW, OVSVM]) {
    await virshMaybe('destroy', d);
    await virshMaybe('undefine', '--nvram', d);
  }
  for (const n of [NAT, OVSNET]) {
    await virshMaybe('net-destroy', n);
    await virshMaybe('net-undefine', n);
  }
  await virshMaybe('vol-delete', '--pool', POOL, 'disk0.qcow2');
  await virshMaybe('pool-destroy', POOL);
  await virshMaybe('pool-undefine', POOL);
  rmSync(dir, { recursive: true, force: true });
});

describe('libvirt plugin (real libvirtd, KVM or TCG)', () => {
  it('sees the same hypervisor as libvirt: KVM exactly when /dev/kvm is usable, TCG otherwise', async () => {
    const r = await execa('virsh', ['-c', URI, 'domcapabilities', '--virttype', 'kvm'], { reject: false });
    expect(r.exitCode === 0).toBe(kvmUsable());
  });

  it('creates a NAT network, an OVS-backed network, a dir pool with a qcow2 volume and a domain that really runs (KVM or TCG, as the host offers)', async () => {
    await applyTwice(section());
    expect(await virsh('domstate', VM)).toBe('running');
    expect(await virsh('dumpxml', VM)).toContain(`<domain type='${VT}'`);
    const nat = await virsh('net-info', NAT);
    expect(nat).toMatch(/Active:\s+yes/);
    expect(nat).toMatch(/Autostart:\s+yes/);
    const ovs = await virsh('net-info', OVSNET);
    expect(ovs).toMatch(/Active:\s+yes/);
    expect(ovs).toMatch(/Autostart:\s+yes/);
    expect(await virsh('net-dumpxml', OVSNET)).toMatch(/<virtualport type='openvswitch'\/>/);
    expect(await virsh('vol-dumpxml', '--pool', POOL, 'disk0.qcow2')).toMatch(/<format type='qcow2'\/>/);
    expect(await virsh('pool-info', POOL)).toMatch(/Autostart:\s+yes/);
    expect(await virsh('domstate', RAW)).toBe('shut off');
    expect(await virsh('dumpxml', '--inactive', OVSVM)).toMatch(/<virtualport type='openvswitch'/);
  });

  it('orders a domain after its network, pool and OVS bridge', async () => {
    const r = await opd(['graph', doc(section(), dir)], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`"libvirt/domains/${VM}" -> "libvirt/networks/${NAT}"`);
    expect(r.stdout).toContain(`"libvirt/domains/${VM}" -> "libvirt/pools/${POOL}"`);
    expect(r.stdout).toContain(`"libvirt/domains/${OVSVM}" -> "ovs/bridges/${BR}"`);
    expect(r.stdout).toContain(`"libvirt/networks/${OVSNET}" -> "ovs/bridges/${BR}"`);
  });

  it('reports drift through virsh event when a domain is redefined outside opd', async () => {
    const seen: (string | undefined)[] = [];
    let hit: () => void = () => undefined;
    const got = new Promise<void>((r) => (hit = r));
    const w = await libvirt.watch!(
      { settings: { libvirtUri: URI }, log: pino({ level: 'silent' }), desired: {} },
      (a) => {
        seen.push(a);
        if (a === `libvirt/domains/${RAW}`) hit();
      },
    );
    try {
      const f = join(dir, 'raw-outside.xml');
      // the event stream needs a moment to subscribe: redefine until it reports (bounded)
      for (let i = 0; i < 20 && !seen.includes(`libvirt/domains/${RAW}`); i++) {
        writeFileSync(f, await virsh('dumpxml', '--inactive', RAW));
        await virsh('define', f);
        await Promise.race([got, new Promise((r) => setTimeout(r, 500))]);
      }
      expect(seen).toContain(`libvirt/domains/${RAW}`);
    } finally {
      await w.dispose();
    }
  });

  it('leaves the host byte-identical on opd diff with pending changes', async () => {
    const before = await dump();
    const r = await opd(['diff', doc(section({ memory: '128M', rawMemory: 96 }), dir)], { env });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/memory 64 MiB → 128 MiB/);
    expect(await dump()).toBe(before);
  });

  it('stops the running domain gracefully (destroying it after the timeout)', async () => {
    await applyTwice(section({ running: false }));
    expect(await virsh('domstate', VM)).toBe('shut off');
  });

  it('redefines the domain with more memory and keeps its uuid and MAC', async () => {
    const uuid = await virsh('domuuid', VM);
    const mac = /mac address='([^']+)'/.exec(await virsh('dumpxml', '--inactive', VM))![1];
    await applyTwice(section({ running: false, memory: '128M' }));
    expect(await virsh('dominfo', VM)).toMatch(/Max memory:\s+131072 KiB/);
    expect(await virsh('domuuid', VM)).toBe(uuid);
    expect(await virsh('dumpxml', '--inactive', VM)).toContain(`mac address='${mac}'`);
  });

  it('restarts a running domain whose definition changed', async () => {
    await applyTwice(section({ running: true, memory: '128M' }));
    expect(await virsh('domstate', VM)).toBe('running');
    const f = doc(section({ running: true, memory: '96M' }), dir);
    const r = await opd(['apply', f], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/restart/);
    expect(await virsh('domstate', VM)).toBe('running');
    expect(await virsh('dumpxml', VM)).toMatch(/<memory unit='KiB'>98304<\/memory>/);
    expect((await opd(['apply', f], { env })).stdout).toMatch(/no changes/);
  });

  it('compares a raw-XML domain on what its XML names and updates it in place', async () => {
    const uuid = await virsh('domuuid', RAW);
    const f = doc(section({ running: true, memory: '96M', rawMemory: 96 }), dir);
    const d = await opd(['diff', f], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toMatch(new RegExp(`libvirt/domains/${RAW}: xml definition changed`));
    await applyTwice(section({ running: true, memory: '96M', rawMemory: 96 }));
    expect(await virsh('dominfo', RAW)).toMatch(/Max memory:\s+98304 KiB/);
    expect(await virsh('domuuid', RAW)).toBe(uuid);
  });

  it('grows a volume and refuses to delete one without allow_destroy', async () => {
    // qemu-img cannot resize an image a running guest holds: stop it first
    const base = { running: false, memory: '96M', rawMemory: 96 };
    await applyTwice(section(base));
    await applyTwice(section({ ...base, volume: '{ capacity: 128M, format: qcow2 }' }));
    expect(await virsh('vol-dumpxml', '--pool', POOL, 'disk0.qcow2')).toMatch(
      /<capacity unit='bytes'>134217728<\/capacity>/,
    );
    const refused = await opd(['apply', doc(section({ ...base, running: false, volume: '{ state: absent }' }), dir)], {
      env,
    });
    expect(refused.code).toBe(1);
    expect(refused.stdout + refused.stderr).toMatch(/refused/);
    expect(await virsh('vol-list', '--pool', POOL)).toContain('disk0.qcow2');
  });

  it('prints the whole libvirt state with opd show, which re-applies with zero changes', async () => {
    const s = await opd(['show', '--plugin', 'libvirt'], { env });
    expect(s.code).toBe(0);
    expect(s.stdout).toContain(VM);
    const f = join(dir, 'show.yaml');
    writeFileSync(f, s.stdout);
    const v = await opd(['validate', f], { env });
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    const r = await opd(['apply', f], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no changes/);
  });

  it('removes domains, networks, the volume (allowed) and the pool marked absent', async () => {
    const text = `version: 1
plugins:
  libvirt:
    domains:
      ${VM}: { state: absent, shutdown_timeout: 1 }
      ${RAW}: { state: absent }
      ${OVSVM}: { state: absent }
    networks:
      ${NAT}: { state: absent }
      ${OVSNET}: { state: absent }
    pools:
      ${POOL}:
        allow_destroy: true
        volumes:
          disk0.qcow2: { state: absent }
`;
    await applyTwice(text);
    expect(await virsh('vol-list', '--pool', POOL)).not.toContain('disk0.qcow2');
    const gone = `version: 1
plugins:
  libvirt:
    pools:
      ${POOL}: { state: absent }
`;
    await applyTwice(gone);
    expect(await virsh('list', '--all', '--name')).not.toContain(P);
    expect(await virsh('net-list', '--all', '--name')).not.toContain(P);
    expect(await virsh('pool-list', '--all', '--name')).not.toContain(P);
  });

  it('keeps an intact audit trail', async () => {
    const r = await opd(['audit', 'verify'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
