/* Generated from schema/sysctl.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

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
 * With --root DIR (OPD_ROOT) the persistence files are written under DIR; runtime values always concern the running kernel (net.* ones: the network namespace opd runs in).
 */
export interface SysctlDoc {
  keys?: {
    [k: string]: Param;
  };
}
export interface Param {
  /**
   * absent removes opd's persistence file (the runtime value stays).
   */
  state?: 'present' | 'absent';
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  value?: string | number;
  /**
   * Written to /etc/sysctl.d/90-opd-<key>.conf (default true); false removes opd's file.
   */
  persist?: boolean;
}
