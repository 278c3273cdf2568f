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
    expect(entries.map((e) => e.type)).toEqual(['run.start', 'change', 'change', 'change', 'run.end']);
    expect(new Set(entries.map((e) => e.run)).size).toBe(1);
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
