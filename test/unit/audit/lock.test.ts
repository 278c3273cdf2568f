import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../../src/audit/lock.js';

describe('the apply lock', () => {
  it('lets one holder in and makes the second wait until it gives up', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'opd-lock-')), 'x.lock');
    const a = await acquireLock(p, 0);
    await expect(acquireLock(p, 200)).rejects.toThrow(/another opd run holds/);
    a.release();
    const b = await acquireLock(p, 0);
    b.release();
    expect(existsSync(p)).toBe(false);
  });

  it('recovers a lock whose holder is dead', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'opd-lock-')), 'x.lock');
    writeFileSync(p, JSON.stringify({ pid: 999999, start: '1', cmd: 'apply' }));
    const l = await acquireLock(p, 0);
    expect(l.recoveredFrom).toBe(999999);
    l.release();
  });

  it('recovers a torn lock file (its writer died while writing it) and holds the lock itself', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'opd-lock-')), 'x.lock');
    writeFileSync(p, '{"pid":12');
    const l = await acquireLock(p, 0);
    expect(l.recoveredFrom).toBe(-1);
    expect(JSON.parse(readFileSync(p, 'utf8')).pid).toBe(process.pid);
    // held: another taker that does not wait fails (exit 75)
    await expect(acquireLock(p, 0)).rejects.toMatchObject({ kind: 'lock-busy' });
    l.release();
    expect(existsSync(p)).toBe(false);
  });

  it('hands the lock over when the holder releases while another waits', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'opd-lock-')), 'x.lock');
    const a = await acquireLock(p, 0);
    let waited = false;
    const pending = acquireLock(p, 5000, () => (waited = true));
    setTimeout(() => a.release(), 150);
    const b = await pending;
    expect(waited).toBe(true);
    b.release();
  });
});
