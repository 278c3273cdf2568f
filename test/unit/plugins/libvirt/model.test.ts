import { describe, expect, it } from 'vitest';
import { parseXml, projectXml, toXml } from '../../../../src/plugins/libvirt/xml.js';
import {
  buildDomain,
  buildNetwork,
  domainFromXml,
  networkFromXml,
  patchDomain,
  prefixOf,
  volumeFromXml,
} from '../../../../src/plugins/libvirt/model.js';
import { splitBatch } from '../../../../src/plugins/libvirt/virsh.js';

/** A live definition as libvirt returns it, on a KVM host or a TCG one. */
const liveXml = (t: string): string => `<domain type='${t}'>
  <name>vm1</name>
  <uuid>16bd2170-e3a0-4e97-9859-1ebdb8cc854f</uuid>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source pool='p1' volume='d.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'/>
    <interface type='network'>
      <mac address='52:54:00:AA:bb:cc'/>
      <source network='n1'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='ovsbr0'/>
      <virtualport type='openvswitch'/>
      <vlan><tag id='10'/></vlan>
      <model type='e1000'/>
    </interface>
    <serial type='pty'><target type='isa-serial' port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <graphics type='vnc' port='-1' autoport='yes'><listen type='address'/></graphics>
  </devices>
</domain>`;

describe.each(['kvm', 'qemu'])('libvirt XML model (%s domains)', (T) => {
  const LIVE = liveXml(T);
  it('reads only the fields a spec can express from a live definition', () => {
    expect(domainFromXml(parseXml(LIVE))).toEqual({
      type: T,
      memory: 64,
      vcpus: 1,
      boot: ['hd'],
      disks: {
        vda: { device: 'disk', pool: 'p1', volume: 'd.qcow2', format: 'qcow2', bus: 'virtio', readonly: false },
      },
      interfaces: [
        { network: 'n1', mac: '52:54:00:aa:bb:cc', model: 'virtio' },
        { ovs_bridge: 'ovsbr0', mac: '52:54:00:00:00:01', model: 'e1000', vlan: 10 },
      ],
      graphics: { type: 'vnc', port: 'auto' },
      serial: 'pty',
    });
  });

  it('patches memory in place and keeps the uuid, addresses, MACs and unmanaged devices', () => {
    const live = parseXml(LIVE);
    const x = patchDomain(live, { memory: 128 }, domainFromXml(parseXml(LIVE)));
    const out = toXml(x);
    expect(out).toContain('<uuid>16bd2170-e3a0-4e97-9859-1ebdb8cc854f</uuid>');
    expect(out).toContain("<memory unit='MiB'>128</memory>");
    expect(out).toContain("<controller type='usb' index='0' model='piix3-uhci'/>");
    expect(domainFromXml(parseXml(out)).interfaces).toEqual(domainFromXml(parseXml(LIVE)).interfaces);
  });

  it('keeps the MAC of an interface whose attachment stays and drops it when the attachment changes', () => {
    const cur = domainFromXml(parseXml(LIVE));
    const x = patchDomain(parseXml(LIVE), { interfaces: [{ network: 'n1', model: 'e1000' }, { bridge: 'br0' }] }, cur);
    const ifs = domainFromXml(x).interfaces as Record<string, unknown>[];
    expect(ifs[0]).toEqual({ network: 'n1', mac: '52:54:00:aa:bb:cc', model: 'e1000' });
    expect(ifs[1]).toEqual({ bridge: 'br0', model: 'e1000' });
  });

  it('removes a disk marked absent and adds a new one', () => {
    const x = patchDomain(
      parseXml(LIVE),
      { disks: { vda: { state: 'absent' }, vdb: { file: '/var/lib/x.qcow2', format: 'qcow2' } } },
      domainFromXml(parseXml(LIVE)),
    );
    expect(Object.keys(domainFromXml(x).disks as object)).toEqual(['vdb']);
  });

  it('builds a new domain from a spec that reads back as the same spec', () => {
    const spec = {
      memory: 96,
      vcpus: 2,
      disks: { vda: { file: '/img/a.qcow2', format: 'qcow2', bus: 'virtio' } },
      interfaces: [{ network: 'default' }],
      graphics: { type: 'spice', port: 5901 },
      serial: 'pty',
    };
    const got = domainFromXml(parseXml(toXml(buildDomain('vm2', spec, T))));
    expect(got).toMatchObject({
      type: T,
      memory: 96,
      vcpus: 2,
      serial: 'pty',
      graphics: { type: 'spice', port: 5901 },
    });
    expect((got.disks as Record<string, unknown>).vda).toMatchObject(spec.disks.vda);
  });
});

describe.each(['kvm', 'qemu'])('raw XML canonicalization (%s domains)', (T) => {
  const LIVE = liveXml(T);
  it('never reports what libvirt adds (uuid, addresses, machine, default attributes) as a difference', () => {
    const docXml = `<domain type='${T}'><name>vm1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64'>hvm</type></os><devices><disk type='volume' device='disk'><source pool='p1' volume='d.qcow2'/><target dev='vda'/></disk>
      <serial type='pty'/><graphics type='vnc' port='-1'/></devices></domain>`;
    const doc = parseXml(docXml);
    expect(toXml(projectXml(parseXml(LIVE), doc))).toBe(toXml(doc));
  });

  it('reports a changed memory size whatever unit the document uses', () => {
    const doc = parseXml(`<domain><name>vm1</name><memory unit='KiB'>131072</memory></domain>`);
    const cur = toXml(projectXml(parseXml(LIVE), doc));
    expect(cur).toContain("<memory unit='KiB'>65536</memory>");
    expect(cur).not.toBe(toXml(doc));
  });

  it('shows a device the document names but the host lacks as missing', () => {
    const doc = parseXml(`<domain><name>vm1</name><devices><sound model='ich9'/></devices></domain>`);
    expect(toXml(projectXml(parseXml(LIVE), doc))).not.toContain('sound');
  });
});

describe('networks and volumes', () => {
  it('turns a netmask into a prefix', () => {
    expect(prefixOf('255.255.255.0')).toBe(24);
    expect(prefixOf('255.255.240.0')).toBe(20);
  });

  it('reads a NAT network and an OVS-backed bridge network', () => {
    expect(
      networkFromXml(
        parseXml(
          `<network><name>n</name><uuid>x</uuid><forward mode='nat'/><bridge name='virbr0' stp='on' delay='0'/><mac address='52:54:00:c6:dd:40'/><ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>`,
        ),
      ),
    ).toEqual({
      forward: 'nat',
      bridge: 'virbr0',
      ovs: false,
      ip: { address: '192.168.122.1', prefix: 24, dhcp: { start: '192.168.122.2', end: '192.168.122.254' } },
    });
    expect(
      networkFromXml(
        parseXml(
          `<network><name>o</name><forward mode='bridge'/><bridge name='ovsbr0'/><virtualport type='openvswitch'/></network>`,
        ),
      ),
    ).toEqual({ forward: 'bridge', bridge: 'ovsbr0', ovs: true });
  });

  it('redefines a network keeping its uuid and mac', () => {
    const live = parseXml(
      `<network><name>n</name><uuid>u-1</uuid><forward mode='nat'/><bridge name='virbr0' stp='on' delay='0'/><mac address='52:54:00:c6:dd:40'/><ip address='10.0.0.1' prefix='24'/></network>`,
    );
    const x = toXml(buildNetwork('n', { ip: { address: '10.0.1.1', prefix: 24 } }, live));
    expect(x).toContain('<uuid>u-1</uuid>');
    expect(x).toContain("<mac address='52:54:00:c6:dd:40'/>");
    expect(networkFromXml(parseXml(x))).toMatchObject({
      forward: 'nat',
      bridge: 'virbr0',
      ip: { address: '10.0.1.1', prefix: 24 },
    });
  });

  it('reads a volume capacity in bytes and its format', () => {
    expect(
      volumeFromXml(
        parseXml(
          `<volume type='file'><name>d</name><capacity unit='bytes'>67108864</capacity><target><format type='qcow2'/></target></volume>`,
        ),
      ),
    ).toEqual({ capacity: 67108864, format: 'qcow2' });
  });
});

describe('virsh batch output', () => {
  it('splits the output of one virsh process at its markers and drops the prompts', () => {
    const out = `Welcome to virsh\n\nvirsh # echo @@opd-n-0\n@@opd-n-0\nvirsh # list --all --name\nvm1\nvm2\n\nvirsh # echo @@opd-n-1\n@@opd-n-1\nvirsh # dumpxml --inactive 'nosuch'\n\nvirsh # echo @@opd-n-2\n@@opd-n-2\nvirsh # quit\n`;
    expect(splitBatch(out, 'n', [['list'], ['dumpxml']])).toEqual(['vm1\nvm2', '']);
  });
});
