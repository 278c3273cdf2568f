/**
 * ovs's semantic rules (src/core/semantic.ts runs them offline, at validation): what other
 * sections attach to an OVS bridge names a bridge the ovs section declares.
 */
import type { StateDocument } from '../../core/document.js';
import type { Problem } from '../../core/errors.js';
import type { SemanticRule } from '../../core/semantic.js';
import { presentEntries, sectionPointer } from '../../core/semantic.js';
import { isObj } from '../../core/diff.js';

/** Bridges an OVS section declares (present ones). */
function ovsBridges(doc: StateDocument): Set<string> | undefined {
  const ovs = doc.plugins.ovs;
  if (!isObj(ovs)) return undefined;
  return new Set(presentEntries(ovs.bridges).map(([n]) => n));
}

/** Internal ports (interfaces of the host) the OVS section declares. */
function ovsInternalPorts(doc: StateDocument): Set<string> {
  const out = new Set<string>();
  for (const [, br] of presentEntries(doc.plugins.ovs?.bridges))
    for (const [n, p] of presentEntries(br.ports)) if (p.type === 'internal') out.add(n);
  return out;
}

/** Linux bridges and other links the document declares (net plugin), and libvirt's own bridges. */
function otherBridges(doc: StateDocument): Set<string> {
  const out = new Set<string>();
  for (const [n] of presentEntries(doc.plugins.net?.interfaces)) out.add(n);
  for (const [, net] of presentEntries(doc.plugins.libvirt?.networks))
    if (typeof net.bridge === 'string') out.add(net.bridge);
  return out;
}

function declaredList(s: Set<string>): string {
  return s.size ? [...s].sort().join(', ') : 'none';
}

export const RULES: SemanticRule[] = [
  {
    id: 'ovs-bridge-declared',
    description:
      'where the document has an ovs section, what it attaches to an OVS bridge (a container veth `link`, a libvirt domain interface `ovs_bridge` with or without a VLAN tag, a libvirt `ovs: true` network, a net interface of kind `ovs`) names a bridge or internal port that section declares; OVS ports sit under their bridge, so they always have it',
    check: ({ doc }) => {
      const bridges = ovsBridges(doc);
      if (!bridges) return [];
      const problems: Problem[] = [];
      const others = otherBridges(doc);
      for (const [name, c] of presentEntries(doc.plugins.lxc?.containers)) {
        const net = Array.isArray(c.network) ? c.network : [];
        net.forEach((i: unknown, k) => {
          if (!isObj(i) || i.type !== 'veth' || typeof i.link !== 'string') return;
          if (bridges.has(i.link) || others.has(i.link)) return;
          problems.push({
            pointer: sectionPointer('lxc', 'containers', name, 'network', k, 'link'),
            message: `container ${JSON.stringify(name)} links its veth to ${JSON.stringify(i.link)}, a bridge the document does not declare (ovs bridges: ${declaredList(bridges)})`,
            fix: `declare ${i.link} under ovs.bridges (or net.interfaces with kind: bridge), or link to a declared bridge`,
          });
        });
      }
      for (const [name, d] of presentEntries(doc.plugins.libvirt?.domains)) {
        const ifs = Array.isArray(d.interfaces) ? d.interfaces : [];
        ifs.forEach((i: unknown, k) => {
          if (!isObj(i) || typeof i.ovs_bridge !== 'string' || bridges.has(i.ovs_bridge)) return;
          problems.push({
            pointer: sectionPointer('libvirt', 'domains', name, 'interfaces', k, 'ovs_bridge'),
            message: `domain ${JSON.stringify(name)} attaches an interface${i.vlan !== undefined ? ` tagged ${String(i.vlan)}` : ''} to OVS bridge ${JSON.stringify(i.ovs_bridge)}, which the ovs section does not declare (it declares: ${declaredList(bridges)})`,
            fix: `declare ${i.ovs_bridge} under ovs.bridges, or correct the name`,
          });
        });
      }
      for (const [name, n] of presentEntries(doc.plugins.libvirt?.networks)) {
        if (n.ovs !== true || typeof n.bridge !== 'string' || bridges.has(n.bridge)) continue;
        problems.push({
          pointer: sectionPointer('libvirt', 'networks', name, 'bridge'),
          message: `network ${JSON.stringify(name)} forwards to OVS bridge ${JSON.stringify(n.bridge)}, which the ovs section does not declare (it declares: ${declaredList(bridges)})`,
          fix: `declare ${n.bridge} under ovs.bridges, or correct the name`,
        });
      }
      const internal = ovsInternalPorts(doc);
      for (const [name, i] of presentEntries(doc.plugins.net?.interfaces)) {
        if (i.kind !== 'ovs' || internal.has(name) || bridges.has(name)) continue;
        problems.push({
          pointer: sectionPointer('net', 'interfaces', name, 'kind'),
          message: `interface ${JSON.stringify(name)} is of kind ovs but the ovs section declares no internal port or bridge of that name`,
          fix: `add ${name}: { type: internal } under the ports of an ovs bridge, or correct the name`,
        });
      }
      return problems;
    },
  },
];
