import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, appendFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, GENESIS, headPath, sealHead } from '../../../src/audit/chain.js';
import { verifyLog } from '../../../src/audit/verify.js';
import { canonical, sha256 } from '../../../src/core/canonical.js';

const KEY = Buffer.from('test-key-0123456789');

function freshLog(n = 5, key?: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'opd-audit-'));
  const path = join(dir, 'audit.jsonl');
  const log = AuditLog.open(path, key);
  log.append('r1', 'run.start', { document: 'd', plan: 'p' });
  for (let i = 0; i < n - 2; i++) log.append('r1', 'change', { address: `ovs/bridges/b${i}`, result: 'ok' });
  log.append('r1', 'run.end', { status: 'ok' });
  log.close();
  return path;
}

const lines = (p: string) => readFileSync(p, 'utf8').split('\n').filter(Boolean);
const write = (p: string, ls: string[]) => writeFileSync(p, ls.map((l) => l + '\n').join(''));

describe('the audit chain', () => {
  it('chains each entry to the previous one from 64 zeros', () => {
    const p = freshLog(4);
    const es = lines(p).map((l) => JSON.parse(l));
    expect(es[0].prev).toBe(GENESIS);
    for (let i = 1; i < es.length; i++) expect(es[i].prev).toBe(es[i - 1].hash);
    const { hash, ...body } = es[1];
    expect(hash).toBe(sha256(body.prev + canonical(body)));
    expect(es.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it('verifies an intact chain and its sealed head', () => {
    const p = freshLog(6, KEY);
    const r = verifyLog(p, KEY);
    expect(r.ok).toBe(true);
    expect(r.entries).toBe(6);
    expect(r.runs).toBe(1);
    expect(r.sealed).toBe(true);
  });

  it('continues the chain across reopenings', () => {
    const p = freshLog(3);
    const log = AuditLog.open(p);
    log.append('r2', 'run.start', {});
    log.close();
    expect(verifyLog(p).ok).toBe(true);
    expect(lines(p)).toHaveLength(4);
  });

  it('detects an edited field and names the entry', () => {
    const p = freshLog();
    const ls = lines(p);
    ls[2] = ls[2].replace('"result":"ok"', '"result":"no"');
    write(p, ls);
    const r = verifyLog(p);
    expect(r.ok).toBe(false);
    expect(r.broken).toMatchObject({ seq: 3, line: 3 });
    expect(r.broken!.reason).toMatch(/edited/);
  });

  it('detects a deleted entry', () => {
    const p = freshLog();
    const ls = lines(p);
    ls.splice(2, 1);
    write(p, ls);
    const r = verifyLog(p);
    expect(r.ok).toBe(false);
    expect(r.broken!.seq).toBe(4);
    expect(r.broken!.reason).toMatch(/deleted/);
  });

  it('detects swapped entries', () => {
    const p = freshLog();
    const ls = lines(p);
    [ls[1], ls[2]] = [ls[2], ls[1]];
    write(p, ls);
    const r = verifyLog(p);
    expect(r.ok).toBe(false);
    expect(r.broken!.line).toBe(2);
    expect(r.broken!.reason).toMatch(/jumps|reordered/);
  });

  it('detects a duplicated entry', () => {
    const p = freshLog();
    const ls = lines(p);
    ls.splice(3, 0, ls[2]);
    write(p, ls);
    const r = verifyLog(p);
    expect(r.ok).toBe(false);
    expect(r.broken!.reason).toMatch(/repeats|duplicated/);
  });

  it('detects a truncated tail through the head', () => {
    const p = freshLog();
    write(p, lines(p).slice(0, 3));
    const r = verifyLog(p);
    expect(r.ok).toBe(false);
    expect(r.broken!.reason).toMatch(/truncated/);
  });

  it('detects a whole-chain rewrite when the head is sealed with a key', () => {
    const p = freshLog(5, KEY);
    // an attacker without the key rebuilds a consistent chain and an unsealed-looking head
    const dir = mkdtempSync(join(tmpdir(), 'opd-audit-'));
    const forged = join(dir, 'audit.jsonl');
    const log = AuditLog.open(forged);
    log.append('r1', 'run.start', { document: 'FORGED' });
    log.close();
    writeFileSync(p, readFileSync(forged));
    const head = JSON.parse(readFileSync(headPath(forged), 'utf8'));
    writeFileSync(headPath(p), JSON.stringify({ ...head, mac: 'f'.repeat(64) }));
    const r = verifyLog(p, KEY);
    expect(r.ok).toBe(false);
    expect(r.broken!.reason).toMatch(/seal|rewritten/);
  });

  it('reports a torn last line and the next writer keeps it aside', () => {
    const p = freshLog(3);
    appendFileSync(p, '{"seq":4,"ts":"2026-');
    const r = verifyLog(p);
    expect(r.ok).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/torn last line of 20 bytes/);
    const log = AuditLog.open(p);
    expect(log.recovery.tornBytes).toBe(20);
    expect(readFileSync(log.recovery.tornSavedAs!, 'utf8')).toBe('{"seq":4,"ts":"2026-');
    log.append('r2', 'recovery', { torn_bytes: 20 });
    log.close();
    const again = verifyLog(p);
    expect(again.ok).toBe(true);
    expect(again.entries).toBe(4);
    expect(again.warnings.join('\n')).toMatch(/kept aside earlier/);
  });

  it('detects every single-byte flip of a small log', () => {
    const p = freshLog(3, KEY);
    const original = readFileSync(p);
    let undetected = 0;
    for (let i = 0; i < original.length; i++) {
      const b = Buffer.from(original);
      b[i] = b[i] ^ 0x01;
      writeFileSync(p, b);
      const r = verifyLog(p, KEY);
      if (r.ok && r.warnings.length === 0) undetected++;
    }
    writeFileSync(p, original);
    expect(undetected).toBe(0);
    expect(verifyLog(p, KEY).ok).toBe(true);
  });

  it('accepts a whole wave written before a crash stopped the head from moving, and seals it on the next write', () => {
    const p = freshLog(3, KEY);
    const before = JSON.parse(readFileSync(headPath(p), 'utf8'));
    const log = AuditLog.open(p, KEY);
    log.appendMany(
      Array.from({ length: 5 }, (_, i) => ({
        run: 'r2',
        type: 'change',
        fields: { address: `ovs/bridges/w${i}`, result: 'ok' },
      })),
    );
    log.close();
    // the state a kill leaves between writing the wave and moving the head: the sealed write-ahead marker
    writeFileSync(headPath(p), JSON.stringify(sealHead({ seq: before.seq, hash: before.hash, pending: 8 }, KEY)));
    const r = verifyLog(p, KEY);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/entries 4-8 were written by a run that died/);
    const again = AuditLog.open(p, KEY);
    expect(again.recovery.sealedUnsealed).toBe(true);
    again.append('r3', 'run.interrupted', {});
    again.close();
    const sealed = verifyLog(p, KEY);
    expect(sealed.ok).toBe(true);
    expect(sealed.warnings).toEqual([]);
  });

  it('names the run a crash left open when its run.start landed but the head had not moved yet', () => {
    const p = freshLog(3, KEY);
    const before = JSON.parse(readFileSync(headPath(p), 'utf8'));
    const log = AuditLog.open(p, KEY);
    log.append('r9', 'run.start', { document: 'x' });
    log.close();
    // killed between writing run.start and moving the head: the head is the write-ahead marker
    writeFileSync(
      headPath(p),
      JSON.stringify(
        sealHead({ seq: before.seq, hash: before.hash, open_run: before.open_run, pending: before.seq + 1 }, KEY),
      ),
    );
    const again = AuditLog.open(p, KEY);
    expect(again.recovery.sealedUnsealed).toBe(true);
    expect(again.interruptedRun).toBe('r9');
    again.close();
  });

  it('detects entries beyond the sealed write-ahead marker', () => {
    const p = freshLog(3, KEY);
    const before = JSON.parse(readFileSync(headPath(p), 'utf8'));
    const log = AuditLog.open(p, KEY);
    log.appendMany(Array.from({ length: 5 }, () => ({ run: 'r2', type: 'change', fields: { result: 'ok' } })));
    log.close();
    writeFileSync(headPath(p), JSON.stringify(sealHead({ seq: before.seq, hash: before.hash, pending: 6 }, KEY)));
    expect(verifyLog(p, KEY).ok).toBe(false);
    expect(() => AuditLog.open(p, KEY)).toThrow(/head says seq 3/);
  });

  it('refuses to append to a log whose tail was truncated', () => {
    const p = freshLog();
    write(p, lines(p).slice(0, 2));
    expect(() => AuditLog.open(p)).toThrow(/head says seq 5/);
  });

  it('records nothing about runs in a directory listing other than log and head', () => {
    const p = freshLog(2);
    const dir = join(p, '..');
    expect(readdirSync(dir).sort()).toEqual(['audit.jsonl', 'audit.jsonl.head']);
    expect(existsSync(headPath(p))).toBe(true);
  });

  it('reopens a trail whose last entry is longer than the 1 MiB it reads first (a long intent)', () => {
    const p = freshLog(3);
    const log = AuditLog.open(p);
    log.append('r2', 'intent', { changes: 'x'.repeat(3 << 20) });
    log.close();
    const again = AuditLog.open(p);
    expect(again.lastSeq).toBe(4);
    again.append('r2', 'run.end', {});
    again.close();
    expect(verifyLog(p).ok).toBe(true);
  });
});
