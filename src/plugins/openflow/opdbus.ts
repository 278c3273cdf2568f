/**
 * op-dbus's OpenFlowConfig → opd's openflow section: `bridges[]` with `flows[]` (match_fields,
 * typed actions), op-dbus's defaults made explicit so that what opd does not do is refused by
 * name at validation (enable_security_flows defaults to true in op-dbus), never dropped. A
 * flow's cookie is a warning (opd's own cookie identifies its flows); `socket_ports` are taken
 * by the ovs plugin (its adopt hook: internal ports of the bridge).
 */
import type { NormalizeContext, Obj } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';

/** One op-dbus FlowAction ({type: …}) as ovs-ofctl action text; other values stay as they are. */
export function opdbusAction(a: unknown): unknown {
  if (!isObj(a) || typeof a.type !== 'string') return a;
  switch (a.type) {
    case 'output':
      return `output:${String(a.port)}`;
    case 'normal':
      return 'NORMAL';
    case 'drop':
      return 'drop';
    case 'resubmit':
      return `resubmit(,${String(a.table)})`;
    case 'load_register':
      return `load:${String(a.value)}->NXM_NX_REG${String(a.register)}[]`;
    case 'set_field':
      return `set_field:${String(a.value)}->${String(a.field)}`;
    case 'controller':
      return `CONTROLLER:${a.max_len === undefined || a.max_len === null ? 65535 : String(a.max_len)}`;
    default:
      return a; // an unknown type stays an object: the schema refuses it at its position
  }
}

function isOpdbusForm(s: Obj): boolean {
  return (
    Array.isArray(s.bridges) ||
    'flow_policies' in s ||
    'enable_security_flows' in s ||
    'obfuscation_level' in s ||
    'auto_discover_containers' in s
  );
}

export function normalizeOpdbus(section: Obj, ctx: NormalizeContext): Obj {
  const out: Obj = { ...section };
  if (!isOpdbusForm(section)) return out;
  // op-dbus's defaults: security flows on (obfuscation level 1), container discovery on
  if (out.enable_security_flows === undefined) {
    out.enable_security_flows = true;
    ctx.remap('/plugins/openflow/enable_security_flows', '/plugins/openflow');
  }
  if (out.enable_security_flows === false) delete out.obfuscation_level;
  if (out.flow_policies === undefined) delete out.auto_discover_containers;
  if (Array.isArray(out.bridges)) {
    out.bridges = out.bridges.map((b: unknown, bi: number) => {
      if (!isObj(b) || !Array.isArray(b.flows)) return b;
      const flows: Obj = {};
      b.flows.forEach((f: unknown, i: number) => {
        const name = `flow${i}`;
        ctx.remap(
          `/plugins/openflow/bridges/${String(b.name)}/flows/${name}`,
          `/plugins/openflow/bridges/${bi}/flows/${i}`,
        );
        if (!isObj(f)) {
          flows[name] = f;
          return;
        }
        const { match_fields, cookie, ...rest } = f;
        const g: Obj = { ...rest };
        // op-dbus's cookie only identifies the flow (it finds its flows by comparing them whole):
        // opd's cookie does that here, so op-dbus's is not written to the switch
        if (cookie !== undefined && cookie !== null)
          ctx.warn(
            `/plugins/openflow/bridges/${bi}/flows/${i}/cookie`,
            `cookie ${String(cookie)} is not used: opd sets each flow's cookie itself (its prefix and a hash of the flow's name ${name}) to find its flows again`,
            'remove cookie; opd finds its flows by cookie=0x6f70640000000000/0xffffffff00000000',
          );
        if (match_fields !== undefined) {
          g.match = match_fields;
          ctx.remap(
            `/plugins/openflow/bridges/${String(b.name)}/flows/${name}/match`,
            `/plugins/openflow/bridges/${bi}/flows/${i}/match_fields`,
          );
        }
        if (Array.isArray(g.actions)) g.actions = g.actions.map(opdbusAction);
        flows[name] = g;
      });
      return { ...b, flows };
    });
  }
  return out;
}
