/* Generated from schema/openflow.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

export type CommonAddress = string;
/**
 * Resources that must be converged before this one.
 */
export type CommonDependsOn = CommonAddress[];
/**
 * Allow data-destroying operations on this resource.
 */
export type CommonAllowDestroy = boolean;

/**
 * opd owns the flows whose cookie carries its prefix (0x6f706400 in the upper 32 bits); flows with any other cookie are never changed or removed. op-dbus's OpenFlowConfig (bridges[] with flows[] of match_fields and typed actions) is accepted.
 */
export interface OpenflowDoc {
  bridges?: {
    [k: string]: Bridge;
  };
  /**
   * op-dbus generates its own security flows when this is true (its default)
   */
  enable_security_flows?: false;
  /**
   * op-dbus: only with enable_security_flows (refused).
   */
  obfuscation_level?: number;
  /**
   * op-dbus: only with flow_policies (refused); ignored otherwise.
   */
  auto_discover_containers?: boolean;
  /**
   * op-dbus's flow_policies generate flows for containers it discovers at run time; opd does not discover
   */
  flow_policies?: {
    [k: string]: unknown;
  };
  /**
   * op-dbus's controller_endpoint is not managed by opd
   */
  controller_endpoint?: {
    [k: string]: unknown;
  };
}
export interface Bridge {
  /**
   * absent removes every flow opd installed on the bridge (others stay).
   */
  state?: 'present' | 'absent';
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  prune?: {
    /**
     * remove opd's flows on this bridge that the document does not name
     */
    flows?: boolean;
  };
  flows?: {
    [k: string]: Flow;
  };
  /**
   * op-dbus's socket_ports create OVS internal ports from the openflow plugin
   */
  socket_ports?: {
    [k: string]: unknown;
  };
}
export interface Flow {
  /**
   * absent removes the flow opd installed under this name.
   */
  state?: 'present' | 'absent';
  /**
   * default 0
   */
  table?: number;
  /**
   * default 32768 (ovs-ofctl's)
   */
  priority?: number;
  /**
   * seconds; 0 (default) = permanent
   */
  idle_timeout?: number;
  /**
   * seconds; 0 (default) = permanent
   */
  hard_timeout?: number;
  match?: {
    [k: string]: string | number | boolean | null;
  };
  /**
   * In order; empty or `drop` drops. Ports by name.
   */
  actions?: string | string[];
  /**
   * opd sets each flow's cookie itself (its prefix and a hash of the flow's name) so that it never touches flows it did not create
   */
  cookie?: {
    [k: string]: unknown;
  };
}
