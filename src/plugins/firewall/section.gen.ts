/* Generated from schema/firewall.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

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
export type Rule = RawRule | StructuredRule;
export type RawRule = string;
export type StructuredRule = {
  iif?: Ifname | [Ifname, ...Ifname[]];
  oif?: Ifname | [Ifname, ...Ifname[]];
  saddr?: Addr | [Addr, ...Addr[]];
  daddr?: Addr | [Addr, ...Addr[]];
  proto?:
    | ('tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6')
    | ['tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6', ...('tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6')[]];
  sport?: Port | [Port, ...Port[]];
  dport?: Port | [Port, ...Port[]];
  ct_state?:
    | ('new' | 'established' | 'related' | 'invalid' | 'untracked')
    | [
        'new' | 'established' | 'related' | 'invalid' | 'untracked',
        ...('new' | 'established' | 'related' | 'invalid' | 'untracked')[]
      ];
  counter?: boolean;
  log_prefix?: string;
  action: 'accept' | 'drop' | 'reject' | 'masquerade' | 'return' | 'jump' | 'goto' | 'snat' | 'dnat';
  /**
   * the chain for jump/goto
   */
  target?: string;
  /**
   * the address for snat/dnat
   */
  to?: string;
  comment?: string;
};
export type Ifname = string;
export type Addr = string;
export type Port = number | string;
export type UfwRule = {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  /**
   * default allow
   */
  action?: 'allow' | 'deny' | 'reject' | 'limit';
  port?: number | string;
  proto?: 'tcp' | 'udp' | 'any';
  /**
   * source address or prefix (default any)
   */
  from?: string;
  /**
   * incoming interface (ufw allow in on IFACE)
   */
  interface?: string;
};

export interface FirewallDoc {
  /**
   * nftables tables opd owns, by name (e.g. opd). Only the chains the document names are managed unless prune: {chains: true}.
   */
  tables?: {
    [k: string]: Table;
  };
  /**
   * ufw rules opd manages where ufw is the host's firewall (`ufw allow … comment opd:<name>`), by name. Rules without opd's comment are never touched.
   */
  ufw_rules?: {
    [k: string]: UfwRule;
  };
}
export interface Table {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * chains: true removes chains of this table the document does not name.
   */
  prune?: {
    chains?: boolean;
  };
  /**
   * address family (default inet: IPv4 and IPv6)
   */
  family?: 'inet' | 'ip' | 'ip6' | 'bridge' | 'arp' | 'netdev';
  chains?: {
    [k: string]: Chain;
  };
}
export interface Chain {
  state?: CommonState;
  type?: 'filter' | 'nat' | 'route';
  /**
   * a base chain is attached to a hook; without one the chain is a regular chain (a jump target)
   */
  hook?: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress';
  /**
   * a number or a standard name (filter = 0, srcnat = 100, dstnat = -100, …)
   */
  priority?: number | ('raw' | 'mangle' | 'dstnat' | 'filter' | 'security' | 'srcnat' | 'out');
  policy?: 'accept' | 'drop';
  /**
   * the chain's rules, in order (exact: rules not listed are removed from an opd chain). A rule is an object or nft rule text as `nft add rule` takes it.
   *
   * @maxItems 10000
   */
  rules?: Rule[];
}
