/* Generated from schema/kmod.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

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
 * With --root DIR (OPD_ROOT) the persistence files are written under DIR; loading always concerns the running kernel.
 */
export interface KmodDoc {
  modules?: {
    [k: string]: Module;
  };
}
export interface Module {
  /**
   * absent removes opd's persistence and options files (the module stays loaded).
   */
  state?: 'present' | 'absent';
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * The module is loaded now (built-in modules and those in /sys/module count as loaded). Default: not managed.
   */
  loaded?: boolean;
  /**
   * Listed in /etc/modules-load.d/opd-<name>.conf so it loads at boot (true) or opd's file is removed (false).
   */
  persist?: boolean;
  options?: string;
}
