import { describe, expect, it } from 'vitest';
import { foreignDrops, normalizeUfwRule, parseTuple, refusal, ruleArgs } from '../../../../src/plugins/firewall/ufw.js';

const hex = (s: string) => Buffer.from(s).toString('hex');

describe('ufw rules (firewall.ufw_rules)', () => {
  it("reads opd's rules from ufw's tuple lines and ignores everyone else's", () => {
    expect(parseTuple(`### tuple ### allow tcp 9090 0.0.0.0/0 any 0.0.0.0/0 in comment=${hex('opd:grpc')}`)).toEqual({
      name: 'grpc',
      spec: { action: 'allow', proto: 'tcp', port: '9090' },
    });
    expect(
      parseTuple(`### tuple ### allow tcp 5900:7000 ::/0 any fd00::/64 in_eth0 comment=${hex('opd:vnc')}`),
    ).toEqual({
      name: 'vnc',
      spec: { action: 'allow', proto: 'tcp', port: '5900:7000', from: 'fd00::/64', interface: 'eth0' },
    });
    expect(parseTuple('### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in')).toBeUndefined();
    expect(
      parseTuple(`### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=${hex('ssh for bob')}`),
    ).toBeUndefined();
  });

  it('writes the ufw command the way ufw reads it back (ranges with a colon, proto any left out)', () => {
    const spec = normalizeUfwRule({ port: '5900-5999', proto: 'tcp' }) as Record<string, string>;
    expect(spec).toEqual({ action: 'allow', port: '5900:5999', proto: 'tcp' });
    expect(ruleArgs(spec)).toEqual(['allow', 'in', 'proto', 'tcp', 'from', 'any', 'to', 'any', 'port', '5900:5999']);
    expect(
      ruleArgs(
        normalizeUfwRule({ action: 'deny', port: 53, interface: 'eth1', from: '10.0.0.0/8' }) as Record<string, string>,
      ),
    ).toEqual(['deny', 'in', 'on', 'eth1', 'from', '10.0.0.0/8', 'to', 'any', 'port', '53']);
  });
});

describe('accepts that a foreign drop policy overrides', () => {
  const ufwInput = { family: 'ip', table: 'filter', name: 'INPUT', hook: 'input', policy: 'drop' };
  const drops = foreignDrops(
    [
      ufwInput,
      { family: 'ip', table: 'filter', name: 'OUTPUT', hook: 'output', policy: 'accept' },
      { family: 'inet', table: 'opd', name: 'input', hook: 'input', policy: 'drop' },
    ],
    new Set(['inet opd']),
    new Set(['ip filter']),
  );
  it("finds the base chains of other tables that drop by policy (ufw's among them), never opd's own", () => {
    expect(drops).toEqual([{ hook: 'input', family: 'ip', where: 'ip filter INPUT (policy drop, ufw)', ufw: true }]);
  });
  it('refuses accept rules on that hook and names the fix, and lets drop rules and other hooks be', () => {
    const accept = {
      family: 'inet',
      chains: { input: { type: 'filter', hook: 'input', rules: [{ proto: 'tcp', dport: 9090, action: 'accept' }] } },
    };
    const r = refusal('quantix', accept, drops, false)!;
    expect(r.message).toContain('cannot take effect: ip filter INPUT (policy drop, ufw)');
    expect(r.hint).toContain('firewall.ufw_rules');
    expect(
      refusal(
        'quantix',
        { chains: { input: { type: 'filter', hook: 'input', rules: ['tcp dport 9090 drop'] } } },
        drops,
        false,
      ),
    ).toBeUndefined();
    expect(
      refusal('nat', { chains: { post: { type: 'nat', hook: 'postrouting', rules: ['masquerade'] } } }, drops, false),
    ).toBeUndefined();
    expect(
      refusal('fwd', { chains: { f: { type: 'filter', hook: 'forward', rules: ['accept'] } } }, drops, false),
    ).toBeUndefined();
    expect(
      refusal(
        'v6',
        { family: 'ip6', chains: { input: { type: 'filter', hook: 'input', rules: ['accept'] } } },
        drops,
        false,
      ),
    ).toBeUndefined();
  });
});
