/**
 * Pure planning for openflow: a bridge's resource diff becomes one change per flow, each a few
 * add-flows lines (delete by cookie, add with the cookie of the flow's name).
 */
import type { Change, Obj, ResourceDiff } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { canonical } from '../../core/canonical.js';
import { isObj } from '../../core/diff.js';
import { COOKIE_MATCH, cookieOf, flowText, type Flow } from './flows.js';
import type { Bridge, Flow as FlowSpec } from './section.gen.js';

/** A flow in the complete form that normalize gives every flow the document keeps, and read returns. */
function isComplete(f: FlowSpec | undefined): f is FlowSpec & Flow {
  return f !== undefined && isObj(f.match) && Array.isArray(f.actions);
}

export interface FlowChangeData {
  bridge: string;
  /** add-flows lines */
  lines: string[];
}

function describe(f: FlowSpec | undefined, name: string): string {
  // a current flow may be projected to nothing (an absent member of a pruned map)
  return isComplete(f) ? flowText(f) : `flow ${name}`;
}

export function planBridge(d: ResourceDiff<Bridge & Obj>): Change<FlowChangeData>[] {
  const bridge = d.name;
  const base = { resource: d.address, plugin: d.plugin };
  if (d.action === 'delete') {
    const n = Object.keys(d.current?.flows ?? {}).length;
    return [
      {
        ...base,
        address: d.address,
        action: 'delete',
        summary: `remove opd's ${n} flow${n === 1 ? '' : 's'} (cookie ${COOKIE_MATCH.slice(7)})`,
        ops: d.ops,
        data: { bridge, lines: [`delete ${COOKIE_MATCH}`] } satisfies FlowChangeData,
      },
    ];
  }
  const cur = d.current?.flows ?? {};
  const want = d.desired?.flows ?? {};
  const changes: Change<FlowChangeData>[] = [];
  for (const name of [...new Set([...Object.keys(cur), ...Object.keys(want)])].sort()) {
    const address = `${d.address}/flows/${name}`;
    // own members only: a flow named `valueOf` or `constructor` is a name, not Object.prototype's
    const c = Object.hasOwn(cur, name) ? cur[name] : undefined;
    const w = Object.hasOwn(want, name) ? want[name] : undefined;
    const del = `delete cookie=${cookieOf(name)}/-1`;
    const fault = d.faults?.[address];
    if (!w) {
      if (!c) continue;
      const cookie = name.startsWith('cookie-') ? name.slice(7) : cookieOf(name);
      changes.push({
        ...base,
        address,
        action: 'delete',
        summary: `remove ${describe(c, name)}`,
        data: { bridge, lines: [`delete cookie=${cookie}/-1`] } satisfies FlowChangeData,
      });
      continue;
    }
    if (c && canonical(c) === canonical(w) && !fault) continue;
    if (!isComplete(w)) throw new OpdError('bug', `${address}: the flow was not completed by normalize`);
    const add = `add cookie=${cookieOf(name)},${flowText(w)}`;
    changes.push({
      ...base,
      address,
      action: c ? 'update' : 'create',
      summary: c ? `${describe(c, name)} → ${describe(w, name)}` : `add ${describe(w, name)}`,
      ...(fault ? { destructive: true, reason: `${fault}: adding replaces it` } : {}),
      data: { bridge, lines: c ? [del, add] : [add] } satisfies FlowChangeData,
    });
  }
  return changes;
}
