import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { execa } from 'execa';
import { OPD, doc, opd, tmp } from '../helpers/opd.js';
import { createNetns, type Netns } from '../helpers/netns.js';

let ns: Netns;
let env: Record<string, string>;
let dir: string;

const FIRST = `
version: 1
plugins:
  firewall:
    tables:
      opd:
        chains:
          input:
            type: filter
            hook: input
            priority: filter
            policy: accept
            rules:
              # Ravada: VM consoles for the admin workstation only
              - { saddr: 10.1.2.3, proto: tcp, dport: "5900-7000", action: accept }
              - { proto: tcp, dport: "5900-7000", counter: true, action: drop }
              # DHCP from the VM bridge
              - { iif: fcbr0, saddr: 10.0.0.0/24, proto: udp, sport: "67-68", dport: "67-68", action: accept, comment: "dhcp from fcbr0" }
              - 'ip6 saddr fd00::/64 tcp dport {80,22} accept'
          postrouting:
            type: nat
            hook: postrouting
            priority: srcnat
            rules:
              # NQRust: NAT for the VM subnet
              - { saddr: 10.0.0.0/24, oif: eth0, action: masquerade }
              - ip saddr 10.0.1.0/24 oifname eth0 masquerade
`;

describe('firewall plugin (nftables in a network namespace of the test)', () => {
  beforeAll(async () => {
    ns = await createNetns('opdfw');
    dir = tmp('opd-fw-');
    env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_NETNS: ns.name };
    await ns.exec('nft', ['add', 'table', 'inet', 'keepme']);
    await ns.exec('nft', ['add', 'chain', 'inet', 'keepme', 'c']);
  });
  afterAll(async () => {
    await ns?.remove();
  });

  it('applies NAT masquerade, port ACLs and a DHCP rule in a table of its own', async () => {
    const r = await opd(['apply', doc(FIRST, dir, 'first.yaml')], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const text = await ns.exec('nft', ['list', 'table', 'inet', 'opd']);
    expect(text).toContain('type filter hook input priority filter; policy accept;');
    expect(text).toContain('ip saddr 10.1.2.3 tcp dport 5900-7000 accept');
    expect(text).toMatch(/tcp dport 5900-7000 counter packets \d+ bytes \d+ drop/);
    expect(text).toContain(
      'iifname "fcbr0" ip saddr 10.0.0.0/24 udp sport 67-68 udp dport 67-68 accept comment "dhcp from fcbr0"',
    );
    expect(text).toContain('ip6 saddr fd00::/64 tcp dport { 22, 80 } accept');
    expect(text).toContain('oifname "eth0" ip saddr 10.0.0.0/24 masquerade');
    expect(text).toContain('ip saddr 10.0.1.0/24 oifname "eth0" masquerade');
  });

  it('reports no changes on a second apply (rules compare as nft prints them back)', async () => {
    const r = await opd(['apply', join(dir, 'first.yaml')], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no changes');
    expect((await opd(['diff', join(dir, 'first.yaml')], { env })).code).toBe(0);
  });

  it('works the same when run inside the namespace with ip netns exec', async () => {
    const r = await execa('ip', ['netns', 'exec', ns.name, 'node', OPD, 'diff', join(dir, 'first.yaml')], {
      reject: false,
      env: { OPD_LOG_LEVEL: 'warn', OPD_AUDIT_LOG: env.OPD_AUDIT_LOG },
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('no changes');
  });

  it('finds a rule added by hand and removes it from the chain it owns', async () => {
    await ns.exec('nft', ['add', 'rule', 'inet', 'opd', 'input', 'tcp', 'dport', '9999', 'drop']);
    const d = await opd(['diff', join(dir, 'first.yaml')], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toContain('firewall/tables/opd/chains/input');
    expect((await opd(['apply', join(dir, 'first.yaml')], { env })).code).toBe(0);
    expect(await ns.exec('nft', ['list', 'table', 'inet', 'opd'])).not.toContain('9999');
  });

  it('leaves nft byte-identical on diff with pending changes, then changes policy, priority and a rule', async () => {
    const changed = FIRST.replace('policy: accept', 'policy: drop')
      .replace('priority: srcnat', 'priority: 110')
      .replace('saddr: 10.1.2.3,', 'saddr: [10.1.2.3, 10.1.2.4],');
    const p = doc(changed, dir, 'second.yaml');
    const before = await ns.nftDump();
    const d = await opd(['diff', p], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toContain('policy accept → drop');
    expect(d.stdout).toContain('priority 100 → 110');
    expect(await ns.nftDump()).toBe(before);
    const r = await opd(['apply', p], { env });
    expect(r.code).toBe(0);
    const text = await ns.exec('nft', ['list', 'table', 'inet', 'opd']);
    expect(text).toContain('type filter hook input priority filter; policy drop;');
    expect(text).toContain('type nat hook postrouting priority srcnat + 10; policy accept;');
    expect(text).toContain('ip saddr { 10.1.2.3, 10.1.2.4 } tcp dport 5900-7000 accept');
    expect((await opd(['apply', p], { env })).stdout).toContain('no changes');
  });

  it('rejects a rule nft does not accept before touching anything (exit 65)', async () => {
    const before = await ns.nftDump();
    const bad = FIRST.replace('- ip saddr 10.0.1.0/24 oifname eth0 masquerade', '- tcp dport 99999 accept');
    const r = await opd(['apply', doc(bad, dir, 'bad.yaml')], { env });
    expect(r.code).toBe(65);
    expect(r.stderr).toContain('firewall/tables/opd/chains/postrouting/rules/1');
    expect(await ns.nftDump()).toBe(before);
  });

  it('rejects hostile names and rule text with exit 65', async () => {
    const before = await ns.nftDump();
    for (const text of [
      'version: 1\nplugins:\n  firewall:\n    tables:\n      opd:\n        chains:\n          input: { rules: ["accept; flush ruleset"] }\n',
      'version: 1\nplugins:\n  firewall:\n    tables:\n      "opd;flush ruleset": { chains: {} }\n',
      'version: 1\nplugins:\n  firewall:\n    tables:\n      opd:\n        chains:\n          input: { rules: [{ iif: "br0\\"; flush ruleset", action: accept }] }\n',
      'version: 1\nplugins:\n  firewall:\n    tables:\n      opd:\n        chains:\n          input: { rules: [{ proto: tcp, dport: 22, action: accept, comment: "x\\" ; flush ruleset" }] }\n',
    ]) {
      const r = await opd(['apply', doc(text, dir, 'hostile.yaml')], { env });
      expect(r.code).toBe(65);
    }
    expect(await ns.nftDump()).toBe(before);
  });

  it('removes the table marked absent and keeps a table it does not own', async () => {
    const p = doc('version: 1\nplugins:\n  firewall:\n    tables:\n      opd: { state: absent }\n', dir, 'absent.yaml');
    expect((await opd(['apply', p], { env })).code).toBe(0);
    const tables = await ns.exec('nft', ['list', 'tables']);
    expect(tables).not.toContain('table inet opd');
    expect(tables).toContain('table inet keepme');
    expect((await opd(['apply', p], { env })).stdout).toContain('no changes');
  });

  it('keeps an intact audit trail', async () => {
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
