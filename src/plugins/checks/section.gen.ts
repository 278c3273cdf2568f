/* Generated from schema/checks.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

export type CommonAddress = string;
/**
 * Resources that must be converged before this one.
 */
export type CommonDependsOn = CommonAddress[];
export type Version = string;

/**
 * A failed check stops the run before anything is applied and says which check failed and by how much.
 */
export interface ChecksDoc {
  require?: {
    [k: string]: Check;
  };
}
export interface Check {
  depends_on?: CommonDependsOn;
  /**
   * hardware virtualization usable: a vmx/svm CPU flag or a /dev/kvm that opens read-write
   */
  cpu_virtualization?: true;
  /**
   * /dev/kvm exists and opens read-write
   */
  kvm_device?: true;
  /**
   * MemTotal at least this many MiB
   */
  min_memory_mb?: number;
  min_cpus?: number;
  /**
   * path → MiB available to unprivileged users on the filesystem holding it (its nearest existing ancestor when it does not exist yet)
   */
  min_disk_free_mb?: {
    [k: string]: number;
  };
  /**
   * no socket listens on these TCP ports (IPv4 or IPv6), in opd's own network namespace
   *
   * @maxItems 1024
   */
  tcp_ports_free?: number[];
  kernel_min?: Version;
  os?: {
    /**
     * ID (or ID_LIKE) of /etc/os-release, e.g. debian, or a list
     */
    id?: string | [string, ...string[]];
    /**
     * VERSION_ID exactly
     */
    version_id?: string;
    /**
     * VERSION_ID at least
     */
    version_min?: string;
  };
}
