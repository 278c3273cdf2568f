import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import {
  foreignListening,
  holdersOf,
  listeningInodes,
  ownedByDocument,
  type Holder,
} from '../../../../src/plugins/checks/holders.js';
import { evaluate, type Facts } from '../../../../src/plugins/checks/index.js';

let server: Server;
let port = 0;
beforeAll(async () => {
  server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const pg: Holder = { pid: 10, comm: 'postgres', units: ['postgresql@15-main.service'] };
const unitHolder: Holder = { pid: 11, comm: 'manager', units: ['nqrust-manager.service'] };

describe('who holds a port a check wants free', () => {
  it('finds the process that listens (this test) through /proc, by socket inode', () => {
    const inodes = listeningInodes().get(port);
    expect(inodes?.size).toBeGreaterThan(0);
    const hs = holdersOf(inodes!);
    expect(hs.map((h) => h.pid)).toContain(process.pid);
  });

  it('keeps a port busy when a process the document does not name holds it, and says who', () => {
    const r = foreignListening(
      new Set([port]),
      [port],
      { systemd: { units: { 'other.service': { active_state: 'active' } } } },
      {},
    );
    expect(r.busy.has(port)).toBe(true);
    expect(r.holders.get(port)).toContain(`pid ${process.pid}`);
  });

  it("counts a unit the document runs as the document's own, but not one it stops or removes", () => {
    const doc = (spec: object) => ({ systemd: { units: { 'nqrust-manager.service': spec } } });
    expect(ownedByDocument(unitHolder, 18080, doc({ active_state: 'active' }), {})).toBe(
      'systemd/units/nqrust-manager.service',
    );
    expect(ownedByDocument(unitHolder, 18080, doc({ active_state: 'inactive' }), {})).toBeUndefined();
    expect(ownedByDocument(unitHolder, 18080, doc({ state: 'absent' }), {})).toBeUndefined();
  });

  it('counts the PostgreSQL server the document configures on its port, and only on that port', () => {
    const doc = { databases: { pg_roles: { nexus: { login: true } } } };
    expect(ownedByDocument(pg, 5432, doc, {})).toBe('databases (PostgreSQL)');
    expect(ownedByDocument(pg, 5433, doc, {})).toBeUndefined();
    expect(ownedByDocument(pg, 5433, doc, { pgPort: '5433' })).toBe('databases (PostgreSQL)');
    expect(ownedByDocument(pg, 5432, {}, {})).toBeUndefined();
    expect(ownedByDocument({ ...pg, comm: 'nginx' }, 5432, doc, {})).toBeUndefined();
  });

  it("measures min_memory_mb against the host's total memory, so the document's own running guests never fail it", () => {
    const facts = { memMb: 4096, listening: new Set<number>() } as unknown as Facts;
    expect(evaluate({ min_memory_mb: 4096 }, facts)).toEqual({ min_memory_mb: 4096 });
    expect(evaluate({ min_memory_mb: 8192 }, facts)).toEqual({ min_memory_mb: 4096 });
  });
});
