import { describe, expect, it } from 'vitest';
import { priorityNumber, ruleText, parseTextRules } from '../../../../src/plugins/firewall/rules.js';

describe('firewall rule text', () => {
  it('renders the structured form as nft rule text', () => {
    expect(ruleText({ saddr: '10.1.2.3', proto: 'tcp', dport: '5900-7000', action: 'accept' }, 'r')).toBe(
      'ip saddr 10.1.2.3 tcp dport 5900-7000 accept',
    );
    expect(ruleText({ saddr: '10.0.0.0/24', oif: 'eth0', action: 'masquerade' }, 'r')).toBe(
      'oifname "eth0" ip saddr 10.0.0.0/24 masquerade',
    );
    expect(ruleText({ iif: 'fcbr0', proto: 'udp', sport: 68, dport: 67, action: 'accept' }, 'r')).toBe(
      'iifname "fcbr0" udp sport 68 udp dport 67 accept',
    );
    expect(
      ruleText(
        {
          proto: ['tcp', 'udp'],
          dport: [53, '60-70'],
          ct_state: ['new'],
          counter: true,
          action: 'drop',
          comment: 'dns',
        },
        'r',
      ),
    ).toBe('meta l4proto { tcp, udp } th dport { 53, 60-70 } ct state new counter drop comment "dns"');
    expect(ruleText({ saddr: ['fd00::/64'], action: 'jump', target: 'vms' }, 'r')).toBe('ip6 saddr fd00::/64 jump vms');
  });
  it('refuses a rule that mixes IPv4 and IPv6 sources', () => {
    expect(() => ruleText({ saddr: ['10.0.0.1', 'fd00::1'], action: 'accept' }, 'r')).toThrow(/mixes IPv4 and IPv6/);
  });
  it('refuses ports without a protocol', () => {
    expect(() => ruleText({ dport: 22, action: 'accept' }, 'r')).toThrow(/need a proto/);
  });
  it('knows the standard chain priorities', () => {
    expect(priorityNumber('inet', 'srcnat')).toBe(100);
    expect(priorityNumber('ip', 'dstnat')).toBe(-100);
    expect(priorityNumber('bridge', 'filter')).toBe(-200);
    expect(priorityNumber('inet', 5)).toBe(5);
  });
  it('reads rule text by handle from nft -a list ruleset, counters aside', () => {
    const text =
      'table inet opd { # handle 3\n\tchain input { # handle 1\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport 22 counter packets 5 bytes 300 accept # handle 4\n\t}\n}\n';
    expect(parseTextRules(text).get('inet opd input 4')).toBe('tcp dport 22 counter accept');
  });
});
