/* Generated from schema/lxc.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

export type Container = {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * how the container is created: busybox (offline), download (needs the internet; dist/release/arch), none (an existing rootfs given as `rootfs`; opd never deletes it), archive (a root filesystem tarball given as `archive`, e.g. a Proxmox vztmpl .tar.zst, unpacked into the container's own rootfs). Changing it recreates the container (destructive).
   */
  template?: 'busybox' | 'download' | 'none' | 'archive';
  dist?: string;
  release?: string;
  arch?: string;
  /**
   * the root filesystem directory of a template: none container (lxc.rootfs.path). opd never deletes it.
   */
  rootfs?: string;
  /**
   * the root filesystem archive of a template: archive container (gzip, xz or zstd tarball). op-dbus/Proxmox `storage:vztmpl/<file>` references are resolved to it.
   */
  archive?: string;
  /**
   * raw LXC keys → value (or a list of values for keys that repeat, such as lxc.mount.entry). Keys not named are kept as they are.
   */
  config?: {
    [k: string]: ConfigValue | [ConfigValue, ...ConfigValue[]];
  };
  memory?: string;
  cpus?: string;
  /**
   * the container's interfaces in order (lxc.net.0, lxc.net.1, …). Naming it makes opd own every lxc.net.* key. [] means loopback only.
   *
   * @maxItems 32
   */
  network?: Interface[];
  running?: boolean;
  /**
   * lxc.start.auto (started by lxc-autostart at boot)
   */
  autostart?: boolean;
  properties?: {};
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
export type ConfigValue = string;

export interface LxcDoc {
  /**
   * containers: true destroys containers of the lxcpath the document does not name (each still needs allow_destroy or --allow-destroy).
   */
  prune?: {
    containers?: boolean;
  };
  containers?: {
    [k: string]: Container;
  };
}
export interface Interface {
  /**
   * veth: a pair with one end in the container (on `link`); empty: loopback only; none: the container shares the host's network namespace (what LXC does when a config has no lxc.net keys); macvlan/phys: written as given, untested.
   */
  type: 'veth' | 'empty' | 'none' | 'macvlan' | 'phys';
  /**
   * the host bridge (Linux or Open vSwitch) of a veth; the host device of macvlan/phys. An OVS bridge must exist as a netdev of the host (LXC runs `ovs-vsctl add-port` itself).
   */
  link?: string;
  /**
   * host-side name of the veth (lxc.net.N.veth.pair): the port name on the bridge (op-dbus `veth`, e.g. vi100).
   */
  name?: string;
  /**
   * name of the interface inside the container (lxc.net.N.name), e.g. eth0.
   */
  guest_name?: string;
  hwaddr?: string;
  ipv4?: string;
  ipv4_gateway?: string;
  mtu?: number;
}
