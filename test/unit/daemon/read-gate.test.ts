import { describe, it, expect } from 'vitest';
import { ReadGate, redactDeep } from '../../../src/daemon/dbus-api.js';
import { newRedactor } from '../../../src/core/validate.js';
import { clearSecretValues, registerSecretValues } from '../../../src/core/secrets.js';

describe('the D-Bus read gate', () => {
  it('gives callers of a read that is queued or running the same answer, running it once', async () => {
    const gate = new ReadGate(0);
    let runs = 0;
    const read = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 20));
      return `answer ${runs}`;
    };
    const all = await Promise.all([gate.run('Diff', read), gate.run('Diff', read), gate.run('Diff', read)]);
    expect(all).toEqual(['answer 1', 'answer 1', 'answer 1']);
    expect(runs).toBe(1);
  });

  it('runs reads one at a time, each starting at least the interval after the one before', async () => {
    const gate = new ReadGate(150);
    const starts: number[] = [];
    let inside = 0;
    let most = 0;
    const read = (k: string) => async () => {
      starts.push(Date.now());
      most = Math.max(most, ++inside);
      await new Promise((r) => setTimeout(r, 10));
      inside--;
      return k;
    };
    await Promise.all([gate.run('Diff', read('a')), gate.run('QueryState', read('b'))]);
    await gate.run('Diff', read('c'));
    expect(most).toBe(1);
    expect(starts.length).toBe(3);
    for (let i = 1; i < starts.length; i++) expect(starts[i] - starts[i - 1]).toBeGreaterThanOrEqual(145);
  });

  it('lets a failed read fail its callers without blocking the next one', async () => {
    const gate = new ReadGate(0);
    await expect(gate.run('Diff', async () => Promise.reject(new Error('backend down')))).rejects.toThrow(
      'backend down',
    );
    expect(await gate.run('Diff', async () => 'ok')).toBe('ok');
  });
});

describe('redacting a D-Bus answer', () => {
  it('masks every secret value in every string of the answer, keys and other values kept', () => {
    registerSecretValues(['hunter2-very-secret']);
    try {
      const r = newRedactor();
      const out = redactDeep(
        {
          status: 'failing',
          failing: [{ address: 'files/paths//etc/x', error: 'diff: hunter2-very-secret\n' }],
          runs: 3,
        },
        r,
      );
      expect(JSON.stringify(out)).not.toContain('hunter2-very-secret');
      expect(out.failing[0].error).toContain('<secret>');
      expect(out.runs).toBe(3);
      expect(out.failing[0].address).toBe('files/paths//etc/x');
    } finally {
      clearSecretValues();
    }
  });
});
