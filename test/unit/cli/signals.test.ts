import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { ROOT } from '../../helpers/opd.js';

// a process that traps the stop signals as opd apply does (the built module), ends its "run" when
// told on stdin, and then waits; the test sends the signals
const script = (settleAfterFirst: boolean) => `
const { trapStopSignals } = await import(${JSON.stringify(join(ROOT, 'dist/cli/signals.js'))});
const trap = trapStopSignals(() => console.log('first'), () => console.log('second'));
${settleAfterFirst ? "trap.stop.addEventListener('abort', () => { trap.settle(); console.log('settled'); });" : ''}
console.log('ready');
setInterval(() => {}, 1000);
`;

async function run(settleAfterFirst: boolean, signals: number) {
  const child = execa(process.execPath, ['--input-type=module', '-e', script(settleAfterFirst)], { reject: false });
  const lines: string[] = [];
  const seen = (l: string) =>
    new Promise<void>((resolve) => {
      const check = () => (lines.includes(l) ? resolve() : setTimeout(check, 5));
      check();
    });
  child.stdout!.on('data', (b) => lines.push(...String(b).split('\n').filter(Boolean)));
  await seen('ready');
  child.kill('SIGTERM');
  await seen(settleAfterFirst ? 'settled' : 'first');
  if (signals > 1) child.kill('SIGTERM');
  const r = await child;
  return { code: r.exitCode, signal: r.signal, lines };
}

describe('stop signals of a run', () => {
  it('ends the process with 143, never by the signal, when a second SIGTERM comes after the run ended', async () => {
    const r = await run(true, 2);
    expect(r.code).toBe(143);
    expect(r.signal).toBeUndefined();
    // the run had ended: nothing in flight to abort or report
    expect(r.lines).not.toContain('second');
  });

  it('aborts what is in flight and ends with 143 when a second SIGTERM comes during the run', async () => {
    const r = await run(false, 2);
    expect(r.code).toBe(143);
    expect(r.lines).toContain('second');
  });
});
