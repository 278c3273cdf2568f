/**
 * Every timeout, retry and concurrency knob of opd's core and doors in one table (src/exec.ts,
 * src/dbus.ts, src/ovsdb/ read them from here). A plugin's own knobs are rows of its manifest's
 * `tunables` (src/plugins/<name>/manifest.ts): a plugin names a row instead of a number.
 */

export const TUNABLES = {
  /** The longest an applied change waits before its audit entry is fsynced and it is reported (group commit of a long wave). */
  progressFlushMs: 200,
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
  /** Connecting to ovsdb-server; any other OVSDB request (src/ovsdb/client.ts) whose caller names no row. */
  ovsdbConnectMs: 10_000,
  ovsdbRequestMs: 60_000,
  /** Downloading one artifact (a file or .deb from a URL with its sha256), whole. */
  fetchMs: 600_000,
  /** The journal tail that a failed systemd job's error shows (journalctl, a read). */
  journalMs: 15_000,
  /** The audit lock: the daemon's runs (and its D-Bus Apply) wait this long; a CLI run and confirm-or-revert wait longer. */
  daemonLockWaitMs: 60_000,
  runLockWaitMs: 300_000,
  /**
   * The daemon's reading D-Bus methods (Diff, QueryState) read the host (guards, backends): they
   * run one at a time, at most one start per this interval; callers meanwhile share the answer.
   */
  dbusReadIntervalMs: 2_000,
  /** `opd status --apply`: the daemon's D-Bus Apply runs a whole reconcile. */
  daemonCallMs: 600_000,
  /** sd_notify (systemd-notify); STATUS refresh when systemd asks for no watchdog. */
  sdNotifyMs: 10_000,
  statusRefreshMs: 60_000,
  /** The daemon asks a plugin who made a drift (its backend's record) for at most this long. */
  attributionTimeoutMs: 2_000,
  /** The daemon re-reads the state file this long after the last change event (editors write in bursts). */
  stateFileSettleMs: 100,
  /** etcd (fleet): one unary call, dialing, the first fetch at start, revoking the lease at stop, re-watching after a failed watch. */
  etcdCallMs: 5_000,
  etcdDialMs: 3_000,
  fleetStartFetchMs: 8_000,
  fleetRevokeMs: 2_000,
  fleetRewatchMs: 1_000,
  /** A failed fleet status write is retried after this long, doubling up to the cap. */
  fleetPublishRetryMs: 500,
  fleetPublishRetryCapMs: 5_000,
} as const;

/**
 * Retry is decided by the error's kind (docs/design.md, "The core's duties"): `backend-busy` is transient trouble (a
 * timeout, a backend starting up) and `lock-busy` (another package manager holds
 * the lock); everything else is final.
 */
const RETRYABLE: ReadonlySet<string> = new Set(['backend-busy', 'lock-busy']);

export function isRetryable(kind: string): boolean {
  return RETRYABLE.has(kind);
}
