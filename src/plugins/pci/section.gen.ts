/* Generated from schema/pci.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

export type CommonAddress = string;
/**
 * Resources that must be converged before this one.
 */
export type CommonDependsOn = CommonAddress[];

/**
 * Reads and writes /sys/bus/pci (under --root when given). Passthrough: driver_override vfio-pci and driver vfio-pci. op-dbus's `pcidecl` section ({version, items: [{id, mode, address, expect_vendor, expect_device, driver_override}]}) is accepted.
 */
export interface PciDoc {
  devices?: {
    [k: string]: Device;
  };
}
export interface Device {
  depends_on?: CommonDependsOn;
  /**
   * Expected vendor id: a different device at this address blocks the run.
   */
  vendor?: string;
  /**
   * Expected device id: a different device at this address blocks the run.
   */
  device?: string;
  /**
   * Written to driver_override; "" clears it.
   */
  driver_override?: string;
  /**
   * The driver the device must be bound to (none: unbound). A change unbinds it from its current driver, then binds it (drivers_probe when driver_override names the driver).
   */
  driver?: string;
  /**
   * op-dbus's mode: observe-only has no opd equivalent
   */
  mode?: 'enforce';
}
