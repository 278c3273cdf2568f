/**
 * The shipped units' exposure as systemd measures it (`systemd-analyze security --offline=true`,
 * systemd 252 here): at most 5.0 for opd.service and 3.0 for opd-boot.service, and sd_notify
 * accepted from the main process only. That the daemon still manages what it must under this
 * sandbox is daemon-hardened.test.ts's part (and daemon*.test.ts, e2e/reboot.test.ts).
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/opd.js';

async function exposure(unit: string): Promise<{ score: number; out: string }> {
  const r = await execa('systemd-analyze', ['security', '--offline=true', join(ROOT, 'packaging/systemd', unit)], {
    reject: false,
  });
  const out = String(r.stdout) + String(r.stderr);
  const m = /Overall exposure level for \S+: (\d+\.\d)/.exec(out);
  if (!m) throw new Error(`systemd-analyze security gave no overall level for ${unit}:\n${out}`);
  return { score: Number(m[1]), out };
}

describe('the shipped systemd units', () => {
  it('expose opd.service at most 5.0 and opd-boot.service at most 3.0 (systemd-analyze security)', async () => {
    const daemon = await exposure('opd.service');
    const boot = await exposure('opd-boot.service');
    expect(daemon.score, daemon.out).toBeLessThanOrEqual(5.0);
    expect(boot.score, boot.out).toBeLessThanOrEqual(3.0);
  });

  it('accept notifications from the main process only, and never ask for NotifyAccess=all', () => {
    const text = readFileSync(join(ROOT, 'packaging/systemd/opd.service'), 'utf8');
    expect(text).toMatch(/^NotifyAccess=main$/m);
    expect(text).not.toMatch(/^NotifyAccess=all$/m);
  });
});
