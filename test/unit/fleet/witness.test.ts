import { describe, it, expect } from 'vitest';
import { headKeyHost, parseHead } from '../../../src/fleet/witness.js';

const H = 'a'.repeat(64);

describe('the witness copier reading published heads', () => {
  it('takes a head with a whole seq and a sha256 hash, keeping when it was published', () => {
    expect(parseHead(JSON.stringify({ seq: 7, hash: H, at: '2026-01-01T00:00:00Z' }))).toEqual({
      seq: 7,
      hash: H,
      at: '2026-01-01T00:00:00Z',
    });
    expect(parseHead(Buffer.from(JSON.stringify({ seq: 0, hash: H })))).toEqual({ seq: 0, hash: H });
  });

  it('ignores what is not a head: bad JSON, a negative or fractional seq, a hash that is not 64 hex digits', () => {
    for (const v of [
      '{',
      'null',
      '[]',
      '{"seq":-1,"hash":"' + H + '"}',
      '{"seq":1.5,"hash":"' + H + '"}',
      '{"seq":1,"hash":"xyz"}',
      '{"seq":1}',
    ])
      expect(parseHead(v), v).toBeUndefined();
    expect(parseHead(null)).toBeUndefined();
  });

  it('knows a host head key from the other keys under /opd/hosts/', () => {
    expect(headKeyHost('/opd/hosts/kvm1/audit-head')).toBe('kvm1');
    expect(headKeyHost('/opd/hosts/kvm1/status')).toBeUndefined();
    expect(headKeyHost('/opd/hosts/../x/audit-head')).toBeUndefined();
    expect(headKeyHost('/opd/hosts/a/b/audit-head')).toBeUndefined();
    expect(headKeyHost('/opd/witness/kvm1/audit-head')).toBeUndefined();
  });
});
