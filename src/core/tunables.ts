/**
 * Every timeout, retry and concurrency knob of opd in one table. The core and the doors
 * (src/exec.ts, src/dbus.ts) read them from here; plugins name a row instead of a number.
 */

export const TUNABLES = {
  /** One plugin apply call (a batch), before its AbortSignal fires. */
  applyCallMs: 600_000,
  /** Retries of a change whose error kind is retryable, with capped exponential backoff. */
  applyRetries: 2,
  backoffBaseMs: 200,
  backoffCapMs: 5_000,
  /** Apply calls running at once across all plugins (each plugin also has its own concurrency). */
  applyPool: 8,
  /** A process started through the exec door, unless the caller names a longer row. */
  execMs: 60_000,
  /** A D-Bus method call, unless the caller names a longer row. */
  dbusCallMs: 30_000,
  /** Connecting to the system bus. */
  dbusConnectMs: 5_000,
  /** A virsh command (libvirt). */
  virshMs: 120_000,
  /** An OVSDB read and an OVSDB transaction (and vswitchd's handshake after it). */
  ovsdbReadMs: 10_000,
  ovsdbApplyMs: 30_000,
  /** Connecting to ovsdb-server; any other OVSDB request (src/ovsdb/client.ts) whose caller names no row. */
  ovsdbConnectMs: 10_000,
  ovsdbRequestMs: 60_000,
  /** A systemd job (start, stop, restart), from queueing to JobRemoved. */
  systemdJobMs: 180_000,
  /** A package transaction (PackageKit or apt). */
  packageTxMs: 600_000,
  /** Creating a container (lxc-create or unpacking a rootfs archive) and destroying one. */
  lxcCreateMs: 900_000,
  lxcDestroyMs: 300_000,
  lxcStartMs: 120_000,
  lxcKillMs: 60_000,
} as const;

/**
 * Retry is decided by the error's kind (DESIGN.md): `backend-busy` is transient trouble (a
 * timeout, a backend starting up) and `lock-busy` (another package manager holds
 * the lock); everything else is final.
 */
const RETRYABLE: ReadonlySet<string> = new Set(['backend-busy', 'lock-busy']);

export function isRetryable(kind: string): boolean {
  return RETRYABLE.has(kind);
}
