import { afterEach, describe, expect, it } from 'vitest';
import { clearSecretValues, registerSecretValues } from '../../../src/core/secrets.js';
import { newRedactor } from '../../../src/core/validate.js';

describe('redaction', () => {
  afterEach(() => clearSecretValues());

  it('masks x-opd-secret fields in resources, sections and operations', () => {
    const r = newRedactor().withKey('k');
    const file = { content: 'top secret text', mode: '0600' };
    expect(r.resource('files', 'paths', file)).toMatchObject({
      content: expect.stringMatching(/^<secret hmac-sha256:[0-9a-f]{16}>$/),
      mode: '0600',
    });
    expect(JSON.stringify(r.section('files', { paths: { '/etc/x': file } }))).not.toContain('top secret');
    const ops = r.ops('files', 'paths', [
      { op: 'add', path: '/content', value: 'top secret text' },
      { op: 'remove', path: '/mode' },
    ]);
    expect(JSON.stringify(ops)).not.toContain('top secret');
    expect(ops[1]).toEqual({ op: 'remove', path: '/mode' });
  });

  it('gives values under a schema without secret fields back as they are', () => {
    const r = newRedactor().withKey('k');
    const bridge = { ports: { p1: { type: 'internal', tag: 5, external_ids: { a: 'b' } } } };
    expect(r.resource('ovs', 'bridges', bridge)).toEqual(bridge);
    expect(r.section('ovs', { bridges: { br0: bridge } })).toEqual({ bridges: { br0: bridge } });
  });

  it('walks past boolean schemas (a `unit_file: true` branch of the systemd schema) without failing', () => {
    const r = newRedactor().withKey('k');
    const unit = '[Unit]\nDescription=All instances\n';
    expect(r.ops('systemd', 'units', [{ op: 'add', path: '/unit_file', value: unit }])).toEqual([
      { op: 'add', path: '/unit_file', value: unit },
    ]);
    expect(r.resource('systemd', 'units', { unit_file: unit, enabled: true })).toEqual({
      unit_file: unit,
      enabled: true,
    });
  });

  it('still masks secret values wherever they were substituted, also under secret-free schemas', () => {
    registerSecretValues(['s3cr3t-token']);
    const r = newRedactor();
    const out = r.resource('ovs', 'bridges', { external_ids: { token: 'x s3cr3t-token y' } });
    expect(out).toEqual({ external_ids: { token: 'x <secret> y' } });
  });
});
