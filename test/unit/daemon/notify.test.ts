import { describe, it, expect } from 'vitest';
import { systemdNotifier } from '../../../src/daemon/notify.js';

describe('systemdNotifier', () => {
  it('is a no-op without NOTIFY_SOCKET (the daemon run by hand)', async () => {
    const n = systemdNotifier({});
    expect(n.enabled).toBe(false);
    expect(n.watchdogMs).toBe(0);
    await n.send({ READY: '1' });
  });

  it('pings the watchdog at half of WATCHDOG_USEC', () => {
    const n = systemdNotifier({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '60000000' });
    expect(n.enabled).toBe(true);
    expect(n.watchdogMs).toBe(30_000);
  });

  it('leaves the watchdog alone when WATCHDOG_PID names another process', () => {
    const n = systemdNotifier({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '60000000', WATCHDOG_PID: String(process.pid + 1) });
    expect(n.watchdogMs).toBe(0);
  });
});
