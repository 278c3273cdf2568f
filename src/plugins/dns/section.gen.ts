/* Generated from schema/dns.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

export type CommonAddress = string;
/**
 * Resources that must be converged before this one.
 */
export type CommonDependsOn = CommonAddress[];

/**
 * Written to /etc/resolv.conf, or to a systemd-resolved drop-in (/etc/systemd/resolved.conf.d/90-opd.conf) when /etc/resolv.conf is a symlink into /run/systemd/resolve/ (detected at each read; --root applies). op-dbus's `dnsresolver` section ({version, items: [{id, mode, servers, search, options}]}) is accepted.
 */
export interface DnsDoc {
  resolvers?: {
    [k: string]: Resolver;
  };
}
export interface Resolver {
  depends_on?: CommonDependsOn;
  /**
   * Name servers in order (glibc reads at most 3).
   *
   * @maxItems 3
   */
  servers?: [] | [string] | [string, string] | [string, string, string];
  /**
   * Search domains in order.
   *
   * @maxItems 32
   */
  search?: string[];
  /**
   * resolv.conf options (not available with systemd-resolved).
   *
   * @maxItems 32
   */
  options?: string[];
  /**
   * op-dbus's mode: observe-only has no opd equivalent
   */
  mode?: 'enforce';
  /**
   * auto (default): systemd-resolved's drop-in when /etc/resolv.conf links into /run/systemd/resolve/, else /etc/resolv.conf. resolv.conf: always write /etc/resolv.conf (replacing resolved's stub symlink with a file).
   */
  backend?: 'auto' | 'resolv.conf';
}
