/** Recovery of a run a dead writer left: intents without outcomes, what the host holds, leftovers. */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../../src/audit/chain.js';
import { runEntries } from '../../../src/audit/tail.js';
import { verifyLog } from '../../../src/audit/verify.js';
import { newRedactor } from '../../../src/core/validate.js';
import type { Prepared } from '../../../src/core/engine.js';
import type { Obj, Plugin } from '../../../src/core/plugin.js';
import { judge, pendingIntents, recover } from '../../../src/run/recover.js';
import { TempJournal, journalPath } from '../../../src/run/journal.js';

const log = pino({ level: 'silent' });
const dir = () => mkdtempSync(join(tmpdir(), 'opd-recover-'));

describe('pending intents', () => {
  it('are the announced changes without a change or rollback entry after them', () => {
    const es = [
      { type: 'run.start' },
      { type: 'intent', kind: 'change', changes: [{ address: 'a' }, { address: 'b' }, { address: 'c' }] },
      { type: 'change', address: 'a', result: 'ok' },
      { type: 'change', address: 'c', result: 'skipped' },
      { type: 'intent', kind: 'rollback', changes: [{ address: 'a' }] },
    ].map((e, i) => ({ seq: i + 1, ts: '', run: 'r', prev: '', hash: '', ...e }));
    expect(pendingIntents(es).map((p) => `${p.kind}:${p.address}`)).toEqual(['change:b', 'rollback:a']);
  });
});

describe('judging what the host holds for a change', () => {
  const ops = [
    { op: 'add' as const, path: '/mode', value: '0640' },
    { op: 'add' as const, path: '/content', value: 'x' },
  ];
  it('says applied when every operation holds (fields the change does not name are ignored)', () => {
    expect(judge({ mode: '0640', content: 'x', owner: 'root' }, ops)).toEqual({ found: 'applied', differing: [] });
  });
  it('says not applied when none holds, or the resource is not there', () => {
    expect(judge(undefined, ops).found).toBe('not applied');
    expect(judge({ mode: '0644', content: 'y' }, ops).found).toBe('not applied');
  });
  it('says partial and names the fields that differ', () => {
    expect(judge({ mode: '0640', content: 'y' }, ops)).toEqual({ found: 'partial', differing: ['/content'] });
  });
  it('takes a removal as applied when the resource or member is gone', () => {
    expect(judge(undefined, [{ op: 'remove', path: '' }]).found).toBe('applied');
    expect(judge({ ports: { p1: {} } }, [{ op: 'remove', path: '/ports/p1' }]).found).toBe('not applied');
    expect(judge({ ports: {} }, [{ op: 'remove', path: '/ports/p1' }]).found).toBe('applied');
  });
  it('cannot tell a change without operations (a restart)', () => {
    expect(judge({}, []).found).toBe('unknown');
  });
});

describe('reading the last run from the end of the trail', () => {
  it('returns its entries from its run.start, whatever came before', () => {
    const p = join(dir(), 'audit.jsonl');
    const a = AuditLog.open(p);
    a.append('old', 'run.start', {});
    a.appendMany(
      Array.from({ length: 3000 }, (_, i) => ({
        run: 'old',
        type: 'change',
        fields: { address: `x${i}`, pad: 'p'.repeat(400) },
      })),
    );
    a.append('old', 'run.end', {});
    a.append('r', 'run.start', {});
    a.append('r', 'intent', { kind: 'change', changes: [{ address: 'x' }] });
    a.close();
    expect(runEntries(p, 'r').map((e) => e.type)).toEqual(['run.start', 'intent']);
    expect(runEntries(p, 'old')).toHaveLength(3002);
  });
});

/** A plugin holding things in memory: `read` says what it holds for the things named. */
function memPlugin(held: Record<string, Obj>): Plugin {
  return {
    name: 'mem',
    schema: {},
    collections: ['things'],
    read: async (_ctx, desired: Obj) => {
      const things: Obj = {};
      for (const n of Object.keys((desired.things as Obj) ?? {})) if (held[n]) things[n] = held[n];
      return { things };
    },
    plan: () => [],
  };
}

describe('recovering a run its writer left open', () => {
  it('records what the host holds for each change in flight, removes the temp files it left, and closes the run', async () => {
    const d = dir();
    const auditLog = join(d, 'audit.jsonl');
    const root = join(d, 'root');
    mkdirSync(root);
    writeFileSync(join(root, '.f1.conf.opd-0123456789ab'), 'half');
    writeFileSync(join(root, 'f2.conf'), 'mine');
    // the dead run: run.start, an intent of three changes, one outcome, a noted temp directory
    const a = AuditLog.open(auditLog);
    a.append('dead', 'run.start', {});
    a.append('dead', 'intent', {
      kind: 'change',
      changes: [
        {
          address: 'mem/things/a',
          resource: 'mem/things/a',
          action: 'create',
          ops: [{ op: 'add', path: '/v', value: 1 }],
        },
        {
          address: 'mem/things/b',
          resource: 'mem/things/b',
          action: 'create',
          ops: [{ op: 'add', path: '/v', value: 2 }],
        },
        {
          address: 'mem/things/c',
          resource: 'mem/things/c',
          action: 'update',
          ops: [
            { op: 'replace', path: '/v', value: 3 },
            { op: 'replace', path: '/w', value: 3 },
          ],
        },
        {
          address: 'mem/things/d',
          resource: 'mem/things/d',
          action: 'create',
          ops: [{ op: 'add', path: '/v', value: 4 }],
        },
      ],
    });
    a.append('dead', 'change', { address: 'mem/things/d', result: 'ok' });
    a.close();
    new TempJournal(journalPath(auditLog), 'dead').note(root);
    const again = AuditLog.open(auditLog);
    expect(again.interruptedRun).toBe('dead');
    const prep = {
      plugins: new Map([['mem', memPlugin({ a: { v: 1 }, c: { v: 3, w: 0 } })]]),
      redactor: newRedactor(),
    } as unknown as Prepared;
    const r = await recover(
      prep,
      { settings: {}, log, auditLog },
      again,
      again.interruptedRun,
      newRedactor().withKey('k'),
    );
    again.close();
    expect(r.counts).toEqual({ applied: 1, 'not applied': 1, partial: 1, unknown: 0 });
    expect(r.leftovers).toEqual([join(root, '.f1.conf.opd-0123456789ab')]);
    expect(readdirSync(root)).toEqual(['f2.conf']);
    expect(existsSync(journalPath(auditLog))).toBe(false);
    expect(r.lines[0]).toMatch(
      /^run dead was interrupted; its 3 changes in flight, read from the host: 1 applied, 1 not applied, 1 partial/,
    );
    const es = runEntries(auditLog, 'dead');
    const rec = es.filter((e) => e.type === 'recovered');
    expect(rec.map((e) => [e.address ?? e.leftover, e.found, e.differing])).toEqual([
      ['mem/things/a', 'applied', undefined],
      ['mem/things/b', 'not applied', undefined],
      ['mem/things/c', 'partial', ['/w']],
      [join(root, '.f1.conf.opd-0123456789ab'), 'temp file', undefined],
    ]);
    expect(es.at(-1)!.type).toBe('run.interrupted');
    expect(verifyLog(auditLog).ok).toBe(true);
    const reopened = AuditLog.open(auditLog);
    expect(reopened.interruptedRun).toBeUndefined();
    reopened.close();
  });
});
