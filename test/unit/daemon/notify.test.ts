import { describe, it, expect, afterEach } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemdNotifier } from '../../../src/daemon/notify.js';
import { execStats } from '../../../src/exec.js';

const RECEIVER = fileURLToPath(new URL('../../fixtures/notify-socket.py', import.meta.url));

/** A notification socket of the test's own; resolves with the datagrams it has received so far. */
async function notifySocket(): Promise<{ path: string; received: () => string[]; stop: () => void }> {
  const path = join(mkdtempSync(join(tmpdir(), 'opd-notify-')), 'notify');
  const child: ResultPromise = execa('python3', [RECEIVER, path], { reject: false, buffer: false });
  const lines: string[] = [];
  let ready: () => void = () => undefined;
  const listening = new Promise<void>((r) => (ready = r));
  let rest = '';
  child.stdout!.on('data', (b: Buffer) => {
    rest += b.toString();
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) {
      const msg = JSON.parse(p) as string;
      if (msg === 'listening') ready();
      else lines.push(msg);
    }
  });
  await listening;
  stopper = () => child.kill();
  return { path, received: () => [...lines], stop: () => child.kill() };
}
let stopper: () => void = () => undefined;
afterEach(() => stopper());

describe('systemdNotifier', () => {
  it('is a no-op without NOTIFY_SOCKET (the daemon run by hand): nothing is spawned', async () => {
    const n = systemdNotifier({});
    expect(n.enabled).toBe(false);
    expect(n.watchdogMs).toBe(0);
    const before = execStats().spawned;
    await n.send({ READY: '1' });
    expect(execStats().spawned).toBe(before);
  });

  it('delivers READY and STATUS to the notification socket with the daemon as MAINPID, in order', async () => {
    const sock = await notifySocket();
    const n = systemdNotifier({ NOTIFY_SOCKET: sock.path });
    expect(n.enabled).toBe(true);
    await n.send({ READY: '1', STATUS: 'converged, 3 resources' });
    await n.send({ STATUS: 'second\nline' });
    const got = sock.received().filter((m) => !m.startsWith('BARRIER='));
    expect(got).toEqual([
      `MAINPID=${process.pid}\nREADY=1\nSTATUS=converged, 3 resources`,
      `MAINPID=${process.pid}\nSTATUS=second line`,
    ]);
  });

  it('pings the watchdog at half of WATCHDOG_USEC', () => {
    const n = systemdNotifier({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '60000000' });
    expect(n.enabled).toBe(true);
    expect(n.watchdogMs).toBe(30_000);
  });

  it('leaves the watchdog alone when WATCHDOG_PID names another process', () => {
    const n = systemdNotifier({
      NOTIFY_SOCKET: '/run/systemd/notify',
      WATCHDOG_USEC: '60000000',
      WATCHDOG_PID: String(process.pid + 1),
    });
    expect(n.watchdogMs).toBe(0);
  });
});
