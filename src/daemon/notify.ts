/**
 * sd_notify without a native module. Node's dgram has no AF_UNIX, so the datagram to
 * $NOTIFY_SOCKET is sent by `systemd-notify --pid=<the daemon's pid>` through src/exec.ts, on
 * behalf of the main process: systemd-notify puts that pid in the message's SCM_CREDENTIALS (the
 * kernel lets a process with CAP_SYS_ADMIN, as opd.service keeps, name another pid), so systemd
 * sees every READY/STATUS/WATCHDOG as sent by the main PID and the unit can say NotifyAccess=main:
 * no other process of the service (a container, a maintainer script) can report for it.
 * systemd-notify (≥ 246) waits on a barrier until the manager has processed the message, so the
 * notification is not lost when the helper exits before systemd looks up its cgroup.
 */
import { runRead } from '../exec.js';
import { TUNABLES } from '../core/tunables.js';

export interface Notifier {
  /** whether a service manager listens ($NOTIFY_SOCKET set) */
  readonly enabled: boolean;
  /** the watchdog interval in ms (half of WATCHDOG_USEC), or 0 */
  readonly watchdogMs: number;
  send(fields: Record<string, string>): Promise<void>;
}

export function systemdNotifier(
  env: NodeJS.ProcessEnv = process.env,
  log?: { warn(o: object, m: string): void },
): Notifier {
  const socket = env.NOTIFY_SOCKET;
  const usec = Number(env.WATCHDOG_USEC ?? 0);
  const wdPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
  const watchdogMs = socket && usec > 0 && wdPid === process.pid ? Math.max(500, Math.floor(usec / 2000)) : 0;
  let chain: Promise<void> = Promise.resolve();
  return {
    enabled: !!socket,
    watchdogMs,
    send(fields) {
      if (!socket) return Promise.resolve();
      const args = [`--pid=${process.pid}`, ...Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`)];
      // one at a time, in order (READY before the STATUS that follows it)
      chain = chain.then(() =>
        runRead('systemd-notify', args, {
          timeout: TUNABLES.sdNotifyMs,
          env: { NOTIFY_SOCKET: socket },
          backend: 'sd_notify',
          installHint: 'apt-get install systemd',
        }).then(
          () => undefined,
          (err: Error) => log?.warn({ err: err.message }, 'sd_notify failed'),
        ),
      );
      return chain;
    },
  };
}
