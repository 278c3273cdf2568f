import { describe, expect, it } from 'vitest';
import { canonical, sha256 } from '../../../src/core/canonical.js';
import { diffAll, prepareLoaded } from '../../../src/core/engine.js';
import { parseText } from '../../../src/core/document.js';
import { buildPlan, collectEdges, planJSON } from '../../../src/core/plan.js';
import { redactChange } from '../../../src/core/report.js';
import { registry } from '../../../src/plugins/index.js';
import { planHash } from '../../../src/run/record.js';

describe("run.start's plan hash", () => {
  it('is the hash of the redacted plan as planJSON writes it, built without copying the plan', async () => {
    const doc = {
      version: 1,
      plugins: {
        ovs: {
          bridges: {
            br1: {
              state: 'present',
              ports: { p1: { type: 'internal', tag: 10 }, p2: { trunks: [3, 1], vlan_mode: 'trunk' } },
            },
            br0: {
              external_ids: { role: 'x' },
              ports: { b0: { interfaces: { i1: {}, i2: {} }, bond_mode: 'balance-slb' } },
            },
          },
        },
        sysctl: { keys: { 'net.ipv4.ip_forward': { value: '1' } } },
        files: { paths: { '/etc/opd-s': { content: 'pw-Xk29aa-secret', secret: true } } },
      },
    };
    const prep = await prepareLoaded(registry, parseText(JSON.stringify(doc), 'p.json'));
    // br9 exists and is not named: nothing; sysctl's key differs: an update with a reason
    const diffs = diffAll(
      prep,
      {
        ovs: { bridges: { br9: {} } },
        sysctl: { keys: { 'net.ipv4.ip_forward': { value: '0' } } },
        files: { paths: {} },
      },
      false,
    );
    const plan = buildPlan(prep.plugins, diffs, collectEdges(prep.plugins, prep.doc.plugins), []);
    expect(plan.changes.length).toBeGreaterThan(3);
    // the audit trail's redactor (keyed): the secret content's change is masked the same way
    const r = prep.redactor.withKey('k');
    const redacted = planJSON({
      changes: plan.changes.map((ch) => ({ ...redactChange(ch, r), data: undefined })),
      diffs: [],
    });
    expect(canonical(redacted)).toContain('/etc/opd-s');
    expect(canonical(redacted)).not.toContain('pw-Xk29aa-secret');
    expect(canonical(planJSON(plan))).toContain('pw-Xk29aa-secret');
    expect(planHash(plan, r)).toBe(sha256(canonical(redacted)));
    expect(planHash(plan, r)).not.toBe(sha256(canonical(planJSON(plan))));
  });
});
