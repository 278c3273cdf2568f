/** The process and bus doors: the mutate half needs the ApplyContext of a run and honours its AbortSignal. */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { runMutate, runRead } from '../../../src/exec.js';
import { callMutate } from '../../../src/dbus.js';
import { ApplyContext } from '../../../src/core/plugin.js';

const log = pino({ level: 'silent' });

describe('the doors to processes and the bus', () => {
  it('runs a read through the read door without any context', async () => {
    expect((await runRead('echo', ['hello'])).stdout).toBe('hello\n');
  });

  it('refuses a mutating command or bus call without an ApplyContext (dry run by construction)', async () => {
    expect(() => runMutate({ settings: {}, log } as never, 'true', [])).toThrow(/dry-run violation/);
    expect(() =>
      callMutate({ settings: {}, log } as never, { destination: 'x', path: '/', interface: 'x', member: 'Y' }),
    ).toThrow(/dry-run violation/);
  });

  it('stops a mutating command when the apply call’s signal fires', async () => {
    const ctx = ApplyContext.create({}, log, false, AbortSignal.timeout(100));
    const t0 = Date.now();
    await expect(runMutate(ctx, 'sleep', ['30'])).rejects.toMatchObject({
      kind: 'backend-busy',
      message: expect.stringMatching(/sleep 30 was stopped: the apply call timed out/),
    });
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
