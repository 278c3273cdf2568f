/* Generated from schema/net.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

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
export type Ifname = string;

export interface NetDoc {
  /**
   * Interfaces by name. The op-dbus array form ([{name, type, ipv4: {address: [{ip, prefix}], gateway}}]) is accepted too.
   */
  interfaces?: {
    [k: string]: Interface;
  };
}
export interface Interface {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * addresses: true removes addresses the document does not name (never the kernel's fe80:: ones).
   */
  prune?: {
    addresses?: boolean;
  };
  /**
   * bridge, veth and dummy are created (and deleted with state: absent); device (the default) and ovs (an OVS internal interface the ovs plugin creates) must exist: only their state, MTU, addresses and routes are managed.
   */
  kind?: 'bridge' | 'veth' | 'dummy' | 'device' | 'ovs';
  /**
   * the other end of a veth pair
   */
  peer?: string;
  /**
   * the Linux bridge this interface is a port of (null: none)
   */
  master?: Ifname | null;
  /**
   * administrative state
   */
  up?: boolean;
  mtu?: number;
  /**
   * addresses by CIDR (a list of CIDR strings is accepted too); only these are added, and only those marked state: absent are removed.
   */
  addresses?: {
    [k: string]: Address;
  };
  /**
   * routes through this interface in the main table, by destination. A route the document does not name is never deleted.
   */
  routes?: {
    [k: string]: Route;
  };
  /**
   * links whose global addresses and gateway routes move to this interface (an OVS bridge taking over its uplink port). Filled in automatically for a kind: ovs interface from the system ports of its bridge in the ovs section; [] turns that off. Converged when none of these links holds a global address or a gateway route.
   *
   * @maxItems 64
   */
  take_over?: Ifname[];
  dhcp?: false;
}
export interface Address {
  state?: CommonState;
}
export interface Route {
  state?: CommonState;
  /**
   * gateway
   */
  via?: string;
  /**
   * route priority (IPv4 default 0, IPv6 default 1024)
   */
  metric?: number;
}
