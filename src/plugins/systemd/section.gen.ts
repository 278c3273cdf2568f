/* Generated from schema/systemd.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

/**
 * A template (name@.service): its files and enablement; start its instances (name@instance.service) instead.
 *
 * This interface was referenced by `undefined`'s JSON-Schema definition
 * via the `patternProperty` "@\.[a-z]+$".
 */
export type Template = Common & {
  state?: unknown;
  depends_on?: unknown;
  allow_destroy?: unknown;
  prune?: unknown;
  enabled?: unknown;
  masked?: unknown;
  unit_file?: unknown;
  dropins?: unknown;
  reload_on_change?: unknown;
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
export type Content = string;
export type Unit = Common & {
  state?: unknown;
  depends_on?: unknown;
  allow_destroy?: unknown;
  prune?: unknown;
  enabled?: unknown;
  masked?: unknown;
  unit_file?: unknown;
  dropins?: unknown;
  reload_on_change?: unknown;
  /**
   * active: started (StartUnit); inactive: stopped (StopUnit).
   */
  active_state?: 'active' | 'inactive';
};

/**
 * Only the units named here are managed. The op-dbus form units.<name>.{active_state, enabled, masked} is accepted as is.
 */
export interface SystemdDoc {
  units?: {
    [k: string]: Template | Unit;
  };
}
/**
 * Keys shared by units and templates (see unit).
 */
export interface Common {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  /**
   * dropins: true removes drop-ins in <unit dir>/<unit>.d/ that the document does not name.
   */
  prune?: {
    dropins?: boolean;
  };
  /**
   * Enabled as systemctl is-enabled sees it (EnableUnitFiles / DisableUnitFiles).
   */
  enabled?: boolean;
  /**
   * Masked (MaskUnitFiles / UnmaskUnitFiles). A masked unit is also stopped.
   */
  masked?: boolean;
  /**
   * The unit file's full text, written to <unit dir>/<unit> (default /etc/systemd/system).
   */
  unit_file?: string;
  dropins?: Dropins;
  /**
   * When its files change, reload the running unit (ReloadOrRestartUnit) instead of restarting it.
   */
  reload_on_change?: boolean;
}
/**
 * Drop-in name → full content, written to <unit dir>/<unit>.d/<name>. `{state: absent}` removes one.
 */
export interface Dropins {
  [k: string]:
    | Content
    | {
        state: 'absent';
      };
}
