/** The process and bus doors: the mutate half needs the ApplyContext of a run and honours its AbortSignal. */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { runMutate, runRead } from '../../../src/exec.js';
import { callMutate } from '../../../src/dbus.js';
import { ApplyContext } from '../../../src/core/plugin.js';
import { OpdError, abortedError } from '../../../src/core/errors.js';

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
      message: expect.stringMatching(/sleep 30 timed out/),
    });
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('stops a mutating command as final (backend-failed) when the run is stopped rather than timed out', async () => {
    const ac = new AbortController();
    const ctx = ApplyContext.create({}, log, false, ac.signal);
    const p = runMutate(ctx, 'sleep', ['30']);
    setTimeout(() => ac.abort(), 50);
    const err = await p.catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'backend-failed', message: 'sleep 30 was stopped: the run was stopped' });
    expect((err as OpdError).retryable).toBe(false);
  });
});

describe('the error of a call an AbortSignal ended (one rule for every door)', () => {
  it('is backend-busy (retryable) when the signal’s time was up, backend-failed when the run was stopped', () => {
    const busy = abortedError(AbortSignal.abort(new DOMException('time is up', 'TimeoutError')), 'x');
    expect(busy).toMatchObject({ kind: 'backend-busy', message: 'x timed out' });
    expect(busy.retryable).toBe(true);
    const stopped = abortedError(AbortSignal.abort(), 'x', { hint: 'h' });
    expect(stopped).toMatchObject({ kind: 'backend-failed', message: 'x was stopped: the run was stopped', hint: 'h' });
    expect(stopped.retryable).toBe(false);
  });
});
