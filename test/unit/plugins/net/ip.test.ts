import { describe, expect, it } from 'vitest';
import { canonAddress, canonDestination, canonIp } from '../../../../src/host/ip.js';

describe('IP helpers', () => {
  it('prints IPv6 addresses the way inet_ntop does', () => {
    expect(canonIp('FD00:0:0::1')).toBe('fd00::1');
    expect(canonIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonIp('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonIp('::')).toBe('::');
    expect(canonIp('::ffff:10.0.0.1')).toBe('::ffff:10.0.0.1');
    expect(canonIp('fe80::1:2')).toBe('fe80::1:2');
    expect(canonIp('::ffff:7f00:1')).toBe('::ffff:127.0.0.1');
    expect(canonIp('fe80::0001')).toBe('fe80::1');
    expect(canonIp('1:0:0:1:0:0:0:1')).toBe('1:0:0:1::1');
  });
  it('rejects what is not an address', () => {
    for (const s of ['1.2.3.256', '01.2.3.4', 'fd00:::1', '1:2:3:4:5:6:7:8:9', 'br0;rm', '', 'fe80::1%eth0', '10.1'])
      expect(canonIp(s)).toBeUndefined();
  });
  it('keeps host bits of an interface address and clears them in a route destination', () => {
    expect(canonAddress('10.0.0.5/24')).toBe('10.0.0.5/24');
    expect(canonAddress('10.0.0.5')).toBeUndefined();
    expect(canonDestination('10.9.1.0/16')).toBe('10.9.0.0/16');
    expect(canonDestination('10.9.0.1')).toBe('10.9.0.1/32');
    expect(canonDestination('fd01:0::5/64')).toBe('fd01::/64');
    expect(canonDestination('::ffff:10.1.2.3/120')).toBe('::ffff:10.1.2.0/120');
    expect(canonDestination('10.0.0.0/33')).toBeUndefined();
    expect(canonAddress('10.0.0.5/24/1')).toBeUndefined();
  });
  it('tells the IPv4 default route from the IPv6 one by its gateway', () => {
    expect(canonDestination('default', '10.0.0.1')).toBe('default');
    expect(canonDestination('default', 'fd00::1')).toBe('::/0');
    expect(canonDestination('0.0.0.0/0')).toBe('default');
    expect(canonDestination('::/0')).toBe('::/0');
  });
});
