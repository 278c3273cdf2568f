/** net's semantic rules (src/core/semantic.ts runs them offline, at validation). */
import type { Problem } from '../../core/errors.js';
import type { SemanticRule } from '../../core/semantic.js';
import { presentEntries, sectionPointer } from '../../core/semantic.js';
import { isObj } from '../../core/diff.js';

export const RULES: SemanticRule[] = [
  {
    id: 'no-duplicate-addresses',
    description: 'one IP address is not given to two interfaces (net interfaces, container interfaces)',
    check: ({ doc }) => {
      const seen = new Map<string, string>();
      const problems: Problem[] = [];
      const add = (cidr: string, where: string, pointer: string) => {
        const ip = cidr.split('/')[0].toLowerCase();
        const first = seen.get(ip);
        if (first === undefined) seen.set(ip, where);
        else if (first !== where)
          problems.push({
            pointer,
            message: `address ${ip} is given to ${where} and already to ${first}`,
            fix: 'give each interface its own address',
          });
      };
      for (const [name, i] of presentEntries(doc.plugins.net?.interfaces))
        for (const [cidr] of presentEntries(i.addresses))
          add(cidr, `interface ${name}`, sectionPointer('net', 'interfaces', name, 'addresses', cidr));
      for (const [name, c] of presentEntries(doc.plugins.lxc?.containers)) {
        const net = Array.isArray(c.network) ? c.network : [];
        net.forEach((i: unknown, k) => {
          if (isObj(i) && typeof i.ipv4 === 'string')
            add(
              i.ipv4,
              `container ${name} interface ${k}`,
              sectionPointer('lxc', 'containers', name, 'network', k, 'ipv4'),
            );
        });
      }
      return problems;
    },
  },
];
