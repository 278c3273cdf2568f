/* Generated from schema/libvirt.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

export type Network = {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * nat/route/open/isolated: libvirt makes its own bridge; bridge: an existing Linux or OVS bridge (name it in `bridge`).
   */
  forward?: 'nat' | 'route' | 'open' | 'bridge' | 'isolated';
  /**
   * bridge name (libvirt's own for nat/route/isolated, an existing one for forward: bridge).
   */
  bridge?: string;
  /**
   * forward: bridge on an Open vSwitch bridge (<virtualport type='openvswitch'/>).
   */
  ovs?: boolean;
  ip?: {
    address: Ipv4;
    prefix?: number;
    /**
     * alternative to prefix; normalized to prefix.
     */
    netmask?: string;
    dhcp?: {
      start: Ipv4;
      end: Ipv4;
    };
  };
  /**
   * started (default true on create).
   */
  active?: boolean;
  autostart?: boolean;
};
/**
 * absent removes the resource.
 */
export type CommonState = 'present' | 'absent';
export type CommonAddress = string;
/**
 * Resources that must be converged before this one.
 */
export type CommonDependsOn = CommonAddress[];
/**
 * Allow data-destroying operations on this resource.
 */
export type CommonAllowDestroy = boolean;
export type Ipv4 = string;
export type Path = string;
export type Name = string;
export type Mac = string;

export interface LibvirtDoc {
  /**
   * collection: true removes the members the document does not name.
   */
  prune?: {
    networks?: boolean;
    pools?: boolean;
    domains?: boolean;
  };
  networks?: {
    [k: string]: Network;
  };
  pools?: {
    [k: string]: Pool;
  };
  domains?: {
    [k: string]: Domain;
  };
}
export interface Pool {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  prune?: {
    volumes?: boolean;
  };
  /**
   * a directory pool (the only type so far).
   */
  type?: 'dir';
  path?: Path;
  /**
   * started (default true on create).
   */
  active?: boolean;
  autostart?: boolean;
  /**
   * volumes of this pool; deleting one destroys data (needs allow_destroy on the pool).
   */
  volumes?: {
    [k: string]: Volume;
  };
}
export interface Volume {
  state?: CommonState;
  /**
   * virtual size; growing resizes, shrinking destroys data (needs allow_destroy).
   */
  capacity?: number | string;
  /**
   * default qcow2.
   */
  format?: 'qcow2' | 'raw';
}
export interface Domain {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * default kvm when the hypervisor offers it, else qemu.
   */
  type?: 'kvm' | 'qemu';
  /**
   * memory (maximum and current).
   */
  memory?: number | string;
  vcpus?: number;
  /**
   * @maxItems 4
   */
  boot?:
    | []
    | ['hd' | 'cdrom' | 'network' | 'fd']
    | ['hd' | 'cdrom' | 'network' | 'fd', 'hd' | 'cdrom' | 'network' | 'fd']
    | ['hd' | 'cdrom' | 'network' | 'fd', 'hd' | 'cdrom' | 'network' | 'fd', 'hd' | 'cdrom' | 'network' | 'fd']
    | [
        'hd' | 'cdrom' | 'network' | 'fd',
        'hd' | 'cdrom' | 'network' | 'fd',
        'hd' | 'cdrom' | 'network' | 'fd',
        'hd' | 'cdrom' | 'network' | 'fd'
      ];
  disks?: {
    [k: string]: Disk;
  };
  /**
   * the domain's interfaces, in order (the list is exact).
   *
   * @maxItems 64
   */
  interfaces?: Interface[];
  graphics?: Graphics;
  /**
   * a serial console on a pty.
   */
  serial?: 'pty' | 'none';
  /**
   * raw libvirt domain XML instead of the spec fields; compared on what it names only.
   */
  xml?: string;
  running?: boolean;
  autostart?: boolean;
  /**
   * seconds to wait for a graceful shutdown before destroying the domain (default 60).
   */
  shutdown_timeout?: number;
}
export interface Disk {
  state?: CommonState;
  device?: 'disk' | 'cdrom';
  file?: Path;
  block?: Path;
  pool?: Name;
  volume?: Name;
  format?: 'qcow2' | 'raw';
  bus?: 'virtio' | 'sata' | 'scsi' | 'ide' | 'usb';
  readonly?: boolean;
}
export interface Interface {
  /**
   * a libvirt network
   */
  network?: string;
  /**
   * an existing Linux bridge
   */
  bridge?: string;
  /**
   * an Open vSwitch bridge
   */
  ovs_bridge?: string;
  /**
   * user-mode networking
   */
  user?: true;
  model?: 'virtio' | 'e1000' | 'e1000e' | 'rtl8139';
  mac?: Mac;
  vlan?: number;
}
export interface Graphics {
  type: 'vnc' | 'spice' | 'none';
  port?: number | 'auto';
  listen?: Ipv4;
}
