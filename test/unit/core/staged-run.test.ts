/**
 * A run in two stages: a plugin whose backend is down but whose resources depend on resources the
 * plan changes (a database whose server the same document installs and starts) is read, planned
 * and applied after them, in the same run; what depends on its resources waits with it. Without
 * such a dependency a down backend still stops the run (exit 69) unless --partial.
 */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { run } from '../../../src/run/index.js';
import { newRedactor } from '../../../src/core/validate.js';
import { readHostFacts } from '../../../src/core/facts.js';
import { parseText } from '../../../src/core/document.js';
import type { Prepared } from '../../../src/core/engine.js';
import { OpdError } from '../../../src/core/errors.js';
import type { Obj, Plugin, ResourceDiff } from '../../../src/core/plugin.js';
import { tmp } from '../../helpers/opd.js';

const log = pino({ level: 'silent' });

/** A host of three fake backends: a server (it installs and starts), a database in it, a command that uses the database. */
function host() {
  const state = { server: false, db: false, cmd: false };
  const order: string[] = [];
  const simple = (name: 'server' | 'db' | 'cmd', down?: () => boolean): Plugin => ({
    name,
    schema: {},
    collections: ['things'],
    async read() {
      if (down?.()) throw new OpdError('backend-unavailable', `${name}: the server is not running`);
      return { things: { it: { on: state[name] } } };
    },
    plan: (d: ResourceDiff) => [
      { address: d.address, resource: d.address, plugin: name, action: 'create', summary: `make ${name}` },
    ],
    async apply(_ctx, batch) {
      order.push(name);
      state[name] = true;
      return batch.map((c) => ({ address: c.address, status: 'ok' as const }));
    },
  });
  const plugins = new Map<string, Plugin>([
    ['server', simple('server')],
    ['db', simple('db', () => !state.server)],
    ['cmd', simple('cmd')],
  ]);
  return { state, order, plugins };
}

function prepared(plugins: Map<string, Plugin>, sections: Record<string, Obj>): Prepared {
  const text = JSON.stringify({ version: 1, plugins: sections });
  return {
    loaded: parseText(Buffer.from(text), 'doc.json'),
    doc: { version: 1, plugins: sections },
    plugins,
    docHash: 'h',
    warnings: [],
    redactor: newRedactor(),
    facts: readHostFacts(),
    excluded: [],
  };
}

const doc = (dbNeedsServer: boolean): Record<string, Obj> => ({
  server: { things: { it: { on: true } } },
  db: { things: { it: { on: true, ...(dbNeedsServer ? { depends_on: ['server/things/it'] } : {}) } } },
  cmd: { things: { it: { on: true, depends_on: ['db/things/it'] } } },
});

describe('a run whose plan brings up a backend it then needs', () => {
  it('applies the server, then reads and applies the database and what depends on it, in one run (exit 0)', async () => {
    const h = host();
    const auditLog = join(tmp('opd-staged-'), 'audit.jsonl');
    const r = await run(prepared(h.plugins, doc(true)), { settings: {}, log, auditLog, trigger: 'cli' });
    expect(r.status).toBe('ok');
    expect(h.order).toEqual(['server', 'db', 'cmd']);
    expect(r.outcomes.map((o) => `${o.change.address} ${o.status}`)).toEqual([
      'server/things/it ok',
      'db/things/it ok',
      'cmd/things/it ok',
    ]);
    expect(r.unreachable).toEqual([]);
    expect(new Set(r.plan.changes.map((c) => c.id)).size).toBe(3); // one plan, distinct ids
    const entries = readFileSync(auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; run: string; address?: string });
    // write-ahead in both stages: each change announced by an intent before it starts
    expect(entries.map((e) => e.type)).toEqual([
      'run.start',
      'intent',
      'change',
      'intent',
      'change',
      'intent',
      'change',
      'run.end',
    ]);
    expect(
      entries
        .filter((e) => e.type === 'intent')
        .map((e) => (e as unknown as { changes: { address: string }[] }).changes[0].address),
    ).toEqual(['server/things/it', 'db/things/it', 'cmd/things/it']);
    expect(new Set(entries.map((e) => e.run)).size).toBe(1);
  });

  it('stopped during the second stage, lets the change in flight finish, records it and reports the rest of the stage as not started', async () => {
    const h = host();
    const stop = new AbortController();
    const db = h.plugins.get('db')!;
    h.plugins.set('db', {
      ...db,
      apply: async (ctx, batch) => {
        stop.abort('SIGTERM'); // the signal lands while the database's change is in flight
        return db.apply(ctx, batch);
      },
    });
    const auditLog = join(tmp('opd-staged-'), 'audit.jsonl');
    const r = await run(prepared(h.plugins, doc(true)), {
      settings: {},
      log,
      auditLog,
      trigger: 'cli',
      stop: stop.signal,
    });
    expect(r.status).toBe('interrupted');
    expect(r.interrupted).toBe('SIGTERM');
    expect(h.order).toEqual(['server', 'db']);
    expect(r.outcomes.map((o) => `${o.change.address} ${o.status}${o.notStarted ? ' not started' : ''}`)).toEqual([
      'server/things/it ok',
      'db/things/it ok',
      'cmd/things/it skipped not started',
    ]);
    const entries = readFileSync(auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      entries.map((e) => `${e.type as string}${e.address ? ` ${e.address as string} ${e.result as string}` : ''}`),
    ).toEqual([
      'run.start',
      'intent',
      'change server/things/it ok',
      'intent',
      'change db/things/it ok',
      'change cmd/things/it skipped',
      'run.end',
    ]);
    expect(entries.at(-1)).toMatchObject({ status: 'interrupted', interrupted: 'SIGTERM', not_started: 1 });
  });

  it('stopped during the first stage with changes left unstarted, neither reads nor plans the second stage and reports it as not started', async () => {
    const h = host();
    const stop = new AbortController();
    const server = h.plugins.get('server')!;
    h.plugins.set('server', {
      ...server,
      apply: async (ctx, batch) => {
        stop.abort('SIGINT');
        return server.apply(ctx, batch);
      },
    });
    let dbReads = 0;
    const db = h.plugins.get('db')!;
    h.plugins.set('db', { ...db, read: async (ctx, d) => (dbReads++, db.read(ctx, d)) });
    h.plugins.set('extra', { ...h.plugins.get('cmd')!, name: 'extra' });
    const sections = { ...doc(true), extra: { things: { it: { on: true, depends_on: ['server/things/it'] } } } };
    const auditLog = join(tmp('opd-staged-'), 'audit.jsonl');
    const r = await run(prepared(h.plugins, sections), {
      settings: {},
      log,
      auditLog,
      trigger: 'cli',
      stop: stop.signal,
    });
    expect(r.status).toBe('interrupted');
    expect(h.order).toEqual(['server']);
    expect(dbReads).toBe(1); // the first stage's read only
    expect(r.outcomes.map((o) => `${o.change.address} ${o.status}${o.notStarted ? ' not started' : ''}`)).toEqual([
      'server/things/it ok',
      'extra/things/it skipped not started',
    ]);
    expect(r.stageTwoNotStarted?.map((u) => `${u.plugin}: ${u.resources.join(' ')}`)).toEqual([
      'db: db/things/it',
      'cmd: cmd/things/it',
    ]);
    expect(r.stageTwoNotStarted?.[0].error.message).toBe(
      'not started: the run was stopped (SIGINT) before its second stage',
    );
    expect(r.unreachable).toEqual([]);
    const end = JSON.parse(readFileSync(auditLog, 'utf8').trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(end).toMatchObject({ status: 'interrupted', not_started: 1, second_stage_not_started: ['db', 'cmd'] });
  });

  it('stops with the backend unavailable when nothing in the plan leads to it (exit 69), or applies the rest with --partial', async () => {
    const h = host();
    const auditLog = join(tmp('opd-staged-'), 'audit.jsonl');
    await expect(
      run(prepared(h.plugins, doc(false)), { settings: {}, log, auditLog, trigger: 'cli' }),
    ).rejects.toMatchObject({ kind: 'backend-unavailable' });
    expect(h.order).toEqual([]);
    const p = await run(prepared(h.plugins, doc(false)), {
      settings: {},
      log,
      auditLog,
      trigger: 'cli',
      partial: true,
    });
    expect(h.order.sort()).toEqual(['cmd', 'server']); // as ever with --partial: the reachable part
    expect(p.unreachable.map((u) => u.plugin)).toEqual(['db']);
  });

  it('fails the run, naming the backend, when it is still down after the first stage', async () => {
    const h = host();
    h.plugins.set('db', {
      ...h.plugins.get('db')!,
      read: async () => Promise.reject(new OpdError('backend-unavailable', 'db: still down')),
    });
    const auditLog = join(tmp('opd-staged-'), 'audit.jsonl');
    const r = await run(prepared(h.plugins, doc(true)), { settings: {}, log, auditLog, trigger: 'cli' });
    expect(r.status).toBe('failed');
    expect(h.order).toEqual(['server']); // cmd waits on the database: held
    expect(r.unreachable.map((u) => u.plugin)).toEqual(['db']);
  });
});
