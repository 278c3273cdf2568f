/* Generated from schema/ovs.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

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
export type Vlan = number;

export interface OvsDoc {
  /**
   * bridges: true removes bridges the document does not name.
   */
  prune?: {
    bridges?: boolean;
  };
  bridges?: {
    [k: string]: Bridge;
  };
}
export interface Bridge {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * ports: true removes ports the document does not name (never the bridge's own local port).
   */
  prune?: {
    ports?: boolean;
  };
  /**
   * netdev for the userspace datapath (no kernel module).
   */
  datapath_type?: 'system' | 'netdev';
  fail_mode?: 'standalone' | 'secure';
  stp_enable?: boolean;
  external_ids?: Smap;
  other_config?: Smap;
  ports?: {
    [k: string]: Port;
  };
}
export interface Smap {
  [k: string]: string;
}
export interface Port {
  state?: CommonState;
  /**
   * interfaces: true (the default for bonds) removes bond members the document does not name.
   */
  prune?: {
    interfaces?: boolean;
  };
  /**
   * interface type of a single-interface port.
   */
  type?: 'system' | 'internal' | 'patch' | 'tap' | 'vxlan' | 'geneve' | 'gre' | 'dpdk' | 'dummy';
  peer?: Ifname;
  options?: Smap;
  mtu_request?: number;
  tag?: Vlan;
  /**
   * @maxItems 4096
   */
  trunks?: Vlan[];
  vlan_mode?: 'access' | 'native-tagged' | 'native-untagged' | 'trunk';
  bond_mode?: 'active-backup' | 'balance-slb' | 'balance-tcp';
  lacp?: 'active' | 'passive' | 'off';
  external_ids?: Smap;
  other_config?: Smap;
  /**
   * two or more interfaces make the port a bond.
   */
  interfaces?: {
    [k: string]: Iface;
  };
}
export interface Iface {
  type?: 'system' | 'internal' | 'patch' | 'tap' | 'vxlan' | 'geneve' | 'gre' | 'dpdk' | 'dummy';
  /**
   * the other end of a patch port (options:peer).
   */
  peer?: string;
  options?: Smap;
  mtu_request?: number;
  external_ids?: Smap;
}
