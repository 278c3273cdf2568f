/**
 * The ovs plugin against a real ovsdb-server and ovs-vswitchd (netdev datapath, in a network
 * namespace of its own), driven through the built CLI.
 */
import { expectOutput } from '../helpers/output-schema.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { doc, opd, tmp } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';

let ovs: OvsSandbox;
let env: Record<string, string>;
let dir: string;

const BASE = `version: 1
plugins:
  ovs:
    bridges:
      obr0:
        datapath_type: netdev
        external_ids: { role: uplink }
        ports:
          vi100: { type: internal, tag: 10 }
          trk0: { type: internal, trunks: [10, 20], vlan_mode: trunk }
          bond0: { interfaces: { bm1: { type: internal }, bm2: { type: internal } }, bond_mode: active-backup }
          pa: { type: patch, peer: pb }
      obr1:
        datapath_type: netdev
        ports:
          pb: { type: patch, peer: pa }
`;

async function apply(text: string, ...args: string[]) {
  return opd(['apply', doc(text, dir), ...args], { env });
}

async function get(args: string[]): Promise<string> {
  return (await ovs.vsctl(args)).trim();
}

beforeAll(async () => {
  ovs = await startOvs({ vswitchd: true });
  dir = tmp();
  env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };
});

afterAll(async () => {
  await ovs?.stop();
});

describe('the ovs plugin against a real ovsdb-server and vswitchd', () => {
  it('creates bridges, ports, a bond and patch ports in one run and verifies them', async () => {
    const r = await apply(BASE);
    expect(r.stderr).toBe('');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/ok\s+\+ ovs\/bridges\/obr0: bridge/);
    expect(r.stdout).toMatch(/verification passed/);
    expect(await get(['get', 'Port', 'vi100', 'tag'])).toBe('10');
    expect(await get(['get', 'Port', 'trk0', 'trunks'])).toBe('[10, 20]');
    expect((await get(['list-ifaces', 'obr0'])).split('\n')).toEqual(
      expect.arrayContaining(['bm1', 'bm2', 'pa', 'trk0', 'vi100']),
    );
    expect(await get(['get', 'Interface', 'pa', 'options:peer'])).toBe('pb');
    expect(await get(['get', 'Bridge', 'obr0', 'external_ids:opd_managed'])).toBe('"true"');
  });

  it('reports zero changes on a second apply and exit 0 from diff', async () => {
    const r = await apply(BASE);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('no changes: the host matches the document');
    const d = await opd(['diff', doc(BASE, dir)], { env });
    expect(d.code).toBe(0);
  });

  it('shows pending changes with exit 2 and leaves the database byte-identical', async () => {
    const changed = BASE.replace('tag: 10', 'tag: 30').replace('bm2: { type: internal }', 'bm3: { type: internal }');
    const before = await ovs.dump();
    const d = await opd(['diff', doc(changed, dir)], { env });
    const j = await opd(['diff', doc(changed, dir), '-o', 'json'], { env });
    const dry = await opd(['apply', '--dry-run', doc(changed, dir)], { env });
    expect(await ovs.dump()).toBe(before);
    expect(d.code).toBe(2);
    expect(d.stdout).toMatch(/~ ovs\/bridges\/obr0\/ports\/vi100: tag 10 → 30/);
    expect(j.code).toBe(2);
    const plan = JSON.parse(j.stdout);
    expect(plan.changes.map((c: { address: string }) => c.address)).toEqual([
      'ovs/bridges/obr0/ports/bond0',
      'ovs/bridges/obr0/ports/vi100',
    ]);
    expect(dry.code).toBe(2);
    expect(dry.stdout).toMatch(/nothing was changed/);
  });

  it('updates a tag, trunks and bond members, then settles', async () => {
    const changed = BASE.replace('tag: 10', 'tag: 30')
      .replace('trunks: [10, 20]', 'trunks: [10, 20, 30]')
      .replace('bm2: { type: internal }', 'bm3: { type: internal }');
    const r = await apply(changed);
    expect(r.code, r.stdout).toBe(0);
    expect(await get(['get', 'Port', 'vi100', 'tag'])).toBe('30');
    expect(await get(['get', 'Port', 'trk0', 'trunks'])).toBe('[10, 20, 30]');
    const ifs = (await get(['list-ifaces', 'obr0'])).split('\n');
    expect(ifs).toContain('bm3');
    expect(ifs).not.toContain('bm2');
    expect((await apply(changed)).stdout).toMatch(/no changes/);
  });

  it('never touches a bridge or port the document does not name', async () => {
    await ovs.vsctl([
      'add-br',
      'handmade',
      '--',
      'set',
      'Bridge',
      'handmade',
      'datapath_type=netdev',
      '--',
      'add-port',
      'obr0',
      'handport',
      '--',
      'set',
      'Interface',
      'handport',
      'type=internal',
    ]);
    const r = await apply(BASE);
    expect(r.code).toBe(0);
    expect(await get(['list-br'])).toMatch(/handmade/);
    expect((await get(['list-ports', 'obr0'])).split('\n')).toContain('handport');
  });

  it('removes a port marked absent and a bridge marked absent', async () => {
    const text =
      BASE.replace('vi100: { type: internal, tag: 10 }', 'vi100: { state: absent }') +
      '      handmade: { state: absent }\n';
    const r = await apply(text);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/- ovs\/bridges\/obr0\/ports\/vi100/);
    expect((await get(['list-ports', 'obr0'])).split('\n')).not.toContain('vi100');
    expect(await get(['list-br'])).not.toMatch(/handmade/);
    expect((await apply(text)).stdout).toMatch(/no changes/);
  });

  it('prunes ports the document does not name when the bridge says so', async () => {
    const text = BASE.replace(
      '        external_ids: { role: uplink }',
      '        external_ids: { role: uplink }\n        prune: { ports: true }',
    );
    const r = await apply(text);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/- ovs\/bridges\/obr0\/ports\/handport/);
    expect((await get(['list-ports', 'obr0'])).split('\n').sort()).toEqual(['bond0', 'pa', 'trk0', 'vi100']);
  });

  it('fails a port vswitchd rejects, keeps independent changes and reports every outcome', async () => {
    const text =
      BASE +
      `      obr2:
        datapath_type: netdev
        ports:
          good0: { type: internal }
          nosuchdev0: {}
`;
    const r = await apply(text);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/ok\s+\+ ovs\/bridges\/obr2: bridge/);
    expect(r.stdout).toMatch(/ok\s+\+ ovs\/bridges\/obr2\/ports\/good0/);
    expect(r.stdout).toMatch(
      /FAILED\s+\+ ovs\/bridges\/obr2\/ports\/nosuchdev0[\s\S]*ovs-vswitchd rejected nosuchdev0/,
    );
    expect(r.stdout).toMatch(/FAILED: \d+ ok, 1 failed/);
    // the rejected port is not converged: diff keeps showing it
    const d = await opd(['diff', doc(text, dir)], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toMatch(/~ ovs\/bridges\/obr2\/ports\/nosuchdev0: recreate port \(vswitchd: .*nosuchdev0/);
    const again = await apply(text);
    expect(again.code).toBe(1);
  });

  it('rolls back the changes already applied when a change fails with --rollback', async () => {
    const clean = BASE + '      obr2: { state: absent }\n';
    expect((await apply(clean)).code).toBe(0);
    const before = await opd(['show', '--plugin', 'ovs', '-o', 'json'], { env });
    const text =
      BASE.replace('tag: 10', 'tag: 44') +
      `      obr3:
        datapath_type: netdev
        ports:
          nosuchdev1: {}
`;
    const r = await apply(text, '--rollback');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/rollback ok\s+~ ovs\/bridges\/obr0\/ports\/vi100: tag 44 → 10/);
    expect(r.stdout).toMatch(/rolled back \d+ of \d+/);
    expect(await get(['get', 'Port', 'vi100', 'tag'])).toBe('10');
    expect(await get(['list-br'])).not.toMatch(/obr3/);
    const after = await opd(['show', '--plugin', 'ovs', '-o', 'json'], { env });
    expect(expectOutput('show', after.stdout)).toEqual(expectOutput('show', before.stdout));
  });

  it('prints the host as a document that re-applies with zero changes', async () => {
    const shown = await opd(['show', '--plugin', 'ovs'], { env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/obr0:/);
    const r = await apply(shown.stdout);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/no changes/);
  });

  it('keeps an audit trail that verifies after all of it', async () => {
    const v = await opd(['audit', 'verify'], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const log = readFileSync(env.OPD_AUDIT_LOG, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.filter((e) => e.type === 'run.start').length).toBeGreaterThanOrEqual(6);
    expect(log.some((e) => e.type === 'rollback' && e.result === 'ok')).toBe(true);
    expect(log.some((e) => e.type === 'change' && e.result === 'failed' && /nosuchdev0/.test(e.error))).toBe(true);
    const text = await opd(['audit', 'log', '--tail', '3'], { env });
    expect(text.stdout.trim().split('\n')).toHaveLength(3);
  });
});

describe('op-dbus documents against a database-only OVS', () => {
  let db: OvsSandbox;
  beforeAll(async () => {
    db = await startOvs();
  });
  afterAll(async () => {
    await db?.stop();
  });

  it('accepts net.interfaces of type ovs-bridge unchanged and creates the bridges', async () => {
    const e = { OPD_OVS_DB: db.db, OPD_AUDIT_LOG: join(tmp(), 'audit.jsonl') };
    const text = JSON.stringify({
      version: 1,
      plugins: {
        net: {
          interfaces: [
            { name: 'ovsbr0', type: 'ovs-bridge', ports: ['vi100'] },
            { name: 'mesh', type: 'ovs-bridge', ports: [] },
          ],
        },
      },
    });
    const p = doc(text, tmp(), 'opdbus.json');
    const r = await opd(['apply', p], { env: e });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await db.vsctl(['list-br'])).trim().split('\n')).toEqual(['mesh', 'ovsbr0']);
    expect((await db.vsctl(['list-ports', 'ovsbr0'])).trim()).toBe('vi100');
    expect((await opd(['apply', p], { env: e })).stdout).toMatch(/no changes/);
  });

  it('says plainly when the OVS database cannot be reached', async () => {
    const r = await opd(['diff', doc(BASE, tmp())], {
      env: { OPD_OVS_DB: 'unix:/nonexistent/db.sock', OPD_AUDIT_LOG: join(tmp(), 'a.jsonl') },
    });
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/cannot reach the OVS database at unix:\/nonexistent\/db.sock/);
    expect(r.stderr).toMatch(/hint: /);
    // nothing could be read: every resource is listed as unknown, nothing is planned
    expect(r.stdout).toMatch(/^\? ovs\/bridges\/\S+: unknown \(ovs unreachable\)$/m);
    expect(r.stdout).not.toMatch(/^[+~-] /m);
  });
});
