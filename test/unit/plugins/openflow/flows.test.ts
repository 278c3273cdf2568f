/**
 * Desired flows normalized the way ovs-ofctl prints them. Each expected line below was printed by
 * a real `ovs-ofctl -O OpenFlow13 --names --no-stats dump-flows` (OVS 3.1) after adding the
 * input flow, so a document written in any of these forms compares equal to the switch.
 */
import { describe, expect, it } from 'vitest';
import {
  cookieOf,
  isOpdCookie,
  parseDumpLine,
  splitTop,
  COOKIE_MATCH,
} from '../../../../src/plugins/openflow/flows.js';
import { fullFlow as docFlow } from '../../../../src/plugins/openflow/index.js';
import { opdbusAction } from '../../../../src/plugins/openflow/opdbus.js';

const CASES: [string, Record<string, unknown>, string[] | string, string][] = [
  ['dl_type 0x0806 is arp', { dl_type: '0x0806' }, 'normal', ' cookie=0x1, priority=10,arp actions=NORMAL'],
  [
    'ip_dst /32 is printed without its prefix',
    { ip: true, ip_dst: '10.0.0.5/32' },
    'output:p13va',
    ' cookie=0x2, priority=11,ip,nw_dst=10.0.0.5 actions=output:p13va',
  ],
  [
    'host bits under a prefix are masked',
    { ip: true, nw_src: '10.0.0.5/24' },
    'local',
    ' cookie=0x3, priority=12,ip,nw_src=10.0.0.0/24 actions=LOCAL',
  ],
  [
    'dl_type 0x86dd with nw_proto 58 is icmp6',
    { dl_type: '0x86dd', nw_proto: 58 },
    'flood',
    ' cookie=0x4, priority=13,icmp6 actions=FLOOD',
  ],
  [
    'udp_dst is tp_dst',
    { udp: true, udp_dst: 53 },
    'in_port',
    ' cookie=0x5, priority=14,udp,tp_dst=53 actions=IN_PORT',
  ],
  [
    'eth_src/eth_dst are dl_src/dl_dst in lower case',
    { eth_src: 'AA:BB:CC:00:00:01', eth_dst: 'ff:ff:ff:ff:ff:ff' },
    'all',
    ' cookie=0x6, priority=15,dl_src=aa:bb:cc:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff actions=ALL',
  ],
  [
    'numeric tcp_flags print in decimal',
    { tcp: '', tcp_flags: '0x000' },
    'drop',
    ' cookie=0x7, priority=16,tcp,tcp_flags=0 actions=drop',
  ],
  [
    'tcp flag words keep the kernel order',
    { tcp: '', tcp_flags: '+psh+fin+urg' },
    'drop',
    ' cookie=0x8, priority=17,tcp,tcp_flags=+fin+psh+urg actions=drop',
  ],
  ['ip_frag is nw_frag', { ip: '', ip_frag: 'yes' }, [], ' cookie=0x9, priority=18,ip,nw_frag=yes actions=drop'],
  [
    'icmpv6_type is icmp_type',
    { icmp6: '', icmpv6_type: 134 },
    'drop',
    ' cookie=0xa, priority=19,icmp6,icmp_type=134 actions=drop',
  ],
  [
    'ct_state flags are ordered, controller gets its default length',
    { ct_state: '+trk+est', ip: true },
    'controller',
    ' cookie=0xb, priority=20,ct_state=+est+trk,ip actions=CONTROLLER:65535',
  ],
  [
    'nw_dst of arp is arp_tpa',
    { arp: true, nw_dst: '10.0.0.1' },
    ['output:p13va'],
    ' cookie=0xc, priority=21,arp,arp_tpa=10.0.0.1 actions=output:p13va',
  ],
  [
    'strip_vlan is pop_vlan',
    { dl_vlan: 10 },
    'strip_vlan,goto_table:1',
    ' cookie=0xd, priority=22,dl_vlan=10 actions=pop_vlan,goto_table:1',
  ],
  [
    'registers print in hex',
    { reg0: 5 },
    'set_field:5->reg1,resubmit:p13va',
    ' cookie=0xe, priority=23,reg0=0x5 actions=set_field:0x5->reg1,resubmit:p13va',
  ],
  [
    'udp ports stay decimal',
    { udp: true, tp_src: 67, tp_dst: 68 },
    'NORMAL',
    ' cookie=0x10, priority=25,udp,tp_src=67,tp_dst=68 actions=NORMAL',
  ],
  [
    'in_port LOCAL',
    { in_port: 'local' },
    'output:p13va',
    ' cookie=0x11, priority=26,in_port=LOCAL actions=output:p13va',
  ],
  ['metadata in hex', { metadata: 16 }, 'drop', ' cookie=0x14, priority=29,metadata=0x10 actions=drop'],
  [
    'set_field on a MAC',
    { tcp: true, nw_dst: '10.1.0.0/255.255.0.0', tp_dst: 443 },
    'set_field:AA:BB:CC:DD:EE:FF->eth_dst,output:p13va',
    ' cookie=0x16, priority=31,tcp,nw_dst=10.1.0.0/16,tp_dst=443 actions=set_field:aa:bb:cc:dd:ee:ff->eth_dst,output:p13va',
  ],
  [
    'controller with a length, upper case',
    { tcp: true, tcp_flags: '+syn-ack' },
    'controller:64',
    ' cookie=0x19, priority=34,tcp,tcp_flags=+syn-ack actions=CONTROLLER:64',
  ],
  [
    'mod_nw_dst is set_field, quoted ports unquoted',
    { ip: true },
    ['mod_nw_dst:10.0.0.1', 'dec_ttl', 'output:"p13va"'],
    ' cookie=0x1a, priority=35,ip actions=set_field:10.0.0.1->ip_dst,dec_ttl,output:p13va',
  ],
  [
    'load takes hex',
    { tcp: true, tp_dst: 80 },
    ['load:5->NXM_NX_REG0[]', 'set_field:10.0.0.5->ip_dst', 'NORMAL'],
    ' cookie=0x6f70640000000003, table=10, idle_timeout=30, hard_timeout=60, tcp,tp_dst=80 actions=load:0x5->NXM_NX_REG0[],set_field:10.0.0.5->ip_dst,NORMAL',
  ],
];

describe("flows in ovs-ofctl's printed form", () => {
  for (const [name, match, actions, line] of CASES) {
    it(`normalizes ${name}`, () => {
      const printed = parseDumpLine(line)!.flow;
      const want = docFlow({
        table: printed.table,
        priority: printed.priority,
        idle_timeout: printed.idle_timeout,
        hard_timeout: printed.hard_timeout,
        match,
        actions,
      });
      expect(want).toEqual(printed);
    });
  }

  it('parses a dump line with an empty match and the default priority', () => {
    expect(parseDumpLine(' cookie=0x5, table=3, actions=drop')).toEqual({
      cookie: '0x5',
      flow: { table: 3, priority: 32768, match: {}, actions: [], idle_timeout: 0, hard_timeout: 0 },
    });
    expect(parseDumpLine('OFPST_FLOW reply (OF1.3) (xid=0x2):')).toBeUndefined();
    // --no-stats prints no cookie when it is zero (the default NORMAL flow of a new bridge)
    expect(parseDumpLine(' priority=0 actions=NORMAL')).toEqual({
      cookie: '0x0',
      flow: { table: 0, priority: 0, match: {}, actions: ['NORMAL'], idle_timeout: 0, hard_timeout: 0 },
    });
  });

  it("gives every flow name its own cookie under opd's prefix, and tells opd's cookies from others", () => {
    expect(cookieOf('drop-ping')).toMatch(/^0x6f706400[0-9a-f]{8}$/);
    expect(cookieOf('drop-ping')).not.toBe(cookieOf('drop-pong'));
    expect(isOpdCookie(cookieOf('x'))).toBe(true);
    expect(isOpdCookie('0x1234')).toBe(false);
    expect(isOpdCookie('0x0')).toBe(false);
    expect(COOKIE_MATCH).toBe('cookie=0x6f70640000000000/0xffffffff00000000');
  });

  it('splits actions at top-level commas only', () => {
    expect(splitTop('resubmit(,10),output:1,learn(table=1,NXM_OF_VLAN_TCI[0..11])')).toEqual([
      'resubmit(,10)',
      'output:1',
      'learn(table=1,NXM_OF_VLAN_TCI[0..11])',
    ]);
  });

  it("maps op-dbus's typed actions to ovs-ofctl text", () => {
    expect(
      [
        { type: 'output', port: 'vi100' },
        { type: 'normal' },
        { type: 'drop' },
        { type: 'resubmit', table: 10 },
        { type: 'load_register', register: 1, value: 7 },
        { type: 'set_field', field: 'ip_dst', value: '10.0.0.9' },
        { type: 'controller', max_len: 128 },
        { type: 'controller' },
      ].map(opdbusAction),
    ).toEqual([
      'output:vi100',
      'NORMAL',
      'drop',
      'resubmit(,10)',
      'load:7->NXM_NX_REG1[]',
      'set_field:10.0.0.9->ip_dst',
      'CONTROLLER:128',
      'CONTROLLER:65535',
    ]);
    expect(opdbusAction({ type: 'meter' })).toEqual({ type: 'meter' });
  });
});
