import { describe, expect, it } from 'vitest';
import type { Change } from '../../../../src/core/plugin.js';
import { applyScripted, type SqlResult } from '../../../../src/plugins/databases/client.js';

const change = (id: number, sql: string): Change<{ sql: string }> => ({
  id,
  deps: [],
  address: `databases/pg_roles/r${id}`,
  resource: `databases/pg_roles/r${id}`,
  plugin: 'databases',
  action: 'create',
  summary: '',
  data: { sql },
});

/** A fake client: runs statements in order, stops at one containing BAD, echoes markers. */
function fakeRunner(calls: string[]) {
  return async (sql: string): Promise<SqlResult> => {
    calls.push(sql);
    const out: string[] = [];
    for (const line of sql.split('\n').filter(Boolean)) {
      if (line.includes('BAD')) return { ok: false, stdout: out.join('\n'), error: 'ERROR:  boom with hunter22' };
      if (line.startsWith('mark ')) out.push(`opd-mark-${line.slice(5)}`);
    }
    return { ok: true, stdout: out.join('\n') };
  };
}

describe('applyScripted', () => {
  it('applies a batch in one client process', async () => {
    const calls: string[] = [];
    const cs = [change(0, 'A'), change(1, 'B')];
    const r = await applyScripted(
      cs,
      (c) => ({ sql: [c.data!.sql], secrets: [] }),
      (i) => `mark ${i}`,
      fakeRunner(calls),
      'PostgreSQL',
    );
    expect(r.map((x) => x.status)).toEqual(['ok', 'ok']);
    expect(calls).toHaveLength(1);
  });

  it('fails the change that failed, runs the rest again in a new process, and scrubs secrets (dependents are the core’s to skip)', async () => {
    const calls: string[] = [];
    const cs = [change(0, 'A'), change(1, 'BAD'), change(2, 'C'), change(3, 'D')];
    const r = await applyScripted(
      cs,
      (c) => ({ sql: [c.data!.sql], secrets: ['hunter22'] }),
      (i) => `mark ${i}`,
      fakeRunner(calls),
      'PostgreSQL',
    );
    expect(r.map((x) => x.status)).toEqual(['ok', 'failed', 'ok', 'ok']);
    expect(r[1].error?.message).toBe('PostgreSQL: ERROR:  boom with <secret>');
    expect(calls).toHaveLength(2);
    expect(calls[1]).toBe('C\nmark 2\nD\nmark 3\n');
  });
});
