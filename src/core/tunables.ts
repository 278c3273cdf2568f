/**
 * Every timeout, retry and concurrency knob of opd in one table. The core and the doors
 * (src/exec.ts, src/dbus.ts) read them from here; plugins name a row instead of a number.
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
  /** systemd's Reload (daemon-reload: it re-reads every unit file). */
  systemdReloadMs: 120_000,
  /** Downloading one artifact (a file or .deb from a URL with its sha256), whole. */
  fetchMs: 600_000,
  /** A package transaction (PackageKit or apt). */
  packageTxMs: 600_000,
  /** Creating a container (lxc-create or unpacking a rootfs archive) and destroying one. */
  lxcCreateMs: 900_000,
  lxcDestroyMs: 300_000,
  lxcStartMs: 120_000,
  lxcKillMs: 60_000,
  /** lxc-stop's graceful halt when the settings name none (--lxc-stop-timeout), and the door's limit beyond it. */
  lxcStopS: 30,
  lxcStopGraceMs: 30_000,
  /** A domain's graceful shutdown when the document names no `shutdown_timeout`; `virsh event`'s limit beyond it. */
  libvirtShutdownS: 60,
  virshEventGraceMs: 15_000,
  /** An exec step's `timeout:` when the document names none; coreutils timeout's --kill-after; the door's limit beyond both. */
  execStepS: 300,
  execStepKillAfterS: 10,
  execStepGraceMs: 30_000,
  /** A command check's command (checks.commands) when it names no `timeout:`, in seconds. */
  checkCommandS: 60,
  /** An exec step's guard command (creates/unless/onlyif: a read). */
  execGuardMs: 60_000,
  /** The journal tail that a failed systemd job's error shows (journalctl, a read). */
  journalMs: 15_000,
  /** One ufw command (it reloads the whole firewall). */
  ufwMs: 120_000,
  /** One psql/mysql script (reads), one apply script (each DROP DATABASE waits for a checkpoint), and the clients' connect timeout in seconds. */
  sqlMs: 60_000,
  sqlApplyMs: 540_000,
  sqlConnectS: 10,
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
 * Retry is decided by the error's kind (DESIGN.md): `backend-busy` is transient trouble (a
 * timeout, a backend starting up) and `lock-busy` (another package manager holds
 * the lock); everything else is final.
 */
const RETRYABLE: ReadonlySet<string> = new Set(['backend-busy', 'lock-busy']);

export function isRetryable(kind: string): boolean {
  return RETRYABLE.has(kind);
}
