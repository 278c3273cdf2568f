/** Flow names that JavaScript objects know (found by the fuzz harness: `valueOf` was a "bug"). */
import { describe, expect, it } from 'vitest';
import type { ResourceDiff } from '../../../../src/core/plugin.js';
import { compare } from '../../../../src/core/diff.js';
import { planBridge } from '../../../../src/plugins/openflow/plan.js';

const flow = { table: 0, priority: 100, match: { in_port: 1 }, actions: ['drop'] };

function diff(current: object | undefined, desired: object): ResourceDiff {
  return {
    plugin: 'openflow',
    collection: 'bridges',
    name: 'br0',
    address: 'openflow/bridges/br0',
    action: current === undefined ? 'create' : 'update',
    current: current as ResourceDiff['current'],
    desired: desired as ResourceDiff['desired'],
    ops: compare(current ?? {}, desired),
    allowDestroy: false,
  };
}

describe('openflow flow names', () => {
  it('plans flows named valueOf, constructor and toString like any other, and ignores the prototype', () => {
    const names = ['constructor', 'toString', 'valueOf'];
    const flows = Object.fromEntries(names.map((n) => [n, flow]));
    const created = planBridge(diff({ flows: {} }, { flows }) as never);
    expect(created.map((c) => [c.address, c.action])).toEqual(
      names.map((n) => [`openflow/bridges/br0/flows/${n}`, 'create']),
    );
    // a flow the document no longer names (absent) and the host does not have: nothing to do
    expect(planBridge(diff({ flows: {} }, { flows: {} }) as never)).toEqual([]);
    expect(planBridge(diff({ flows }, { flows }) as never)).toEqual([]);
    // the host has them, the document no longer names them: removed
    expect(planBridge(diff({ flows }, { flows: {} }) as never).map((c) => [c.address, c.action])).toEqual(
      names.map((n) => [`openflow/bridges/br0/flows/${n}`, 'delete']),
    );
  });
});
