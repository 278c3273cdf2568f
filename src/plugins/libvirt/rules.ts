/** libvirt's semantic rules (src/core/semantic.ts runs them offline, at validation). */
import type { SemanticRule } from '../../core/semantic.js';
import { presentEntries, sectionPointer } from '../../core/semantic.js';

export const RULES: SemanticRule[] = [
  {
    id: 'libvirt-forward-needs-ip',
    description:
      'a libvirt network with NAT (the default forward mode) or routed forwarding needs an `ip` (libvirt refuses: "nat forwarding requested, but no IP address provided")',
    check: ({ doc }) =>
      presentEntries(doc.plugins.libvirt?.networks)
        .filter(([, n]) => ['nat', 'route'].includes((n.forward as string | undefined) ?? 'nat') && n.ip === undefined)
        .map(([name, n]) => ({
          pointer: sectionPointer('libvirt', 'networks', name),
          message: `network ${JSON.stringify(name)} forwards with ${(n.forward as string | undefined) ?? 'nat'}${n.forward === undefined ? ' (the default)' : ''} but has no ip: libvirt would refuse it at apply ("${(n.forward as string | undefined) ?? 'nat'} forwarding requested, but no IP address provided")`,
          fix: 'give it an ip: { address: 192.168.100.1, prefix: 24 }, or forward: isolated / bridge',
        })),
  },
];
