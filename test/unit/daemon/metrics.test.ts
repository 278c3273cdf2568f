import { describe, it, expect } from 'vitest';
import { parseListen } from '../../../src/daemon/metrics.js';
import { humanLine } from '../../../src/cli/common.js';
import { OpdError } from '../../../src/core/errors.js';

describe('metrics listener and log lines', () => {
  it('binds loopback unless a host is given', () => {
    expect(parseListen('9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('0.0.0.0:9000')).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
  });

  it('refuses a listen address that is not [HOST:]PORT as a usage error', () => {
    for (const bad of ['', 'localhost', '1.2.3.4:99999', ':x']) expect(() => parseListen(bad)).toThrow(OpdError);
  });

  it('turns a pino JSON line into a human line with its fields', () => {
    expect(
      humanLine(
        '{"level":40,"time":"2026-12-01T00:00:00.000Z","msg":"drift detected and corrected","drift":["ovs/bridges/b"],"run":"r1"}\n',
      ),
    ).toBe('2026-12-01T00:00:00.000Z WARN  drift detected and corrected drift=["ovs/bridges/b"] run=r1\n');
  });
});
