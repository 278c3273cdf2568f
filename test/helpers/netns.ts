/** A network namespace of the test's own (unique name), deleted by its owner in afterAll. */
import { execa } from 'execa';
import { uniq } from './opd.js';

export interface Netns {
  name: string;
  /** run a command inside the namespace (ip netns exec) */
  exec(cmd: string, args: string[]): Promise<string>;
  /** iproute2 state that does not tick on its own (no timers, no statistics) */
  ipDump(): Promise<string>;
  nftDump(): Promise<string>;
  remove(): Promise<void>;
}

export async function createNetns(prefix: string): Promise<Netns> {
  const name = `${prefix}-${uniq(6)}`;
  await execa('ip', ['netns', 'add', name]);
  const exec = async (cmd: string, args: string[]) => (await execa('ip', ['netns', 'exec', name, cmd, ...args])).stdout;
  return {
    name,
    exec,
    // configuration only: what the kernel changes on its own (IPv6 duplicate address detection,
    // link-local addresses and routes appearing, address lifetimes, operational state) is left out
    ipDump: async () =>
      [
        await exec('ip', ['-o', 'link', 'show']),
        await exec('ip', ['-o', 'addr', 'show']),
        await exec('ip', ['-4', 'route', 'show', 'table', 'all']),
        await exec('ip', ['-6', 'route', 'show', 'table', 'all']),
      ]
        .join('\n')
        .split('\n')
        // IPv6 local routes of the table local are the kernel's, added once an address passes DAD
        .filter(
          (l) =>
            !/fe80::|ff00::\/8|multicast ff/.test(l) &&
            !/^local [0-9a-f]*:[0-9a-f:]* dev \S+ table local proto kernel/.test(l),
        )
        .map((l) =>
          l
            .replace(/\b(tentative|dadfailed|optimistic|noprefixroute)\b/g, '')
            .replace(/valid_lft \S+ preferred_lft \S+/g, '')
            .replace(/\bstate \S+/g, '')
            .replace(/<([^>]*)>/g, (_m, f: string) => (f.split(',').includes('UP') ? '<UP>' : '<>'))
            .replace(/\s+/g, ' ')
            .trim(),
        )
        .join('\n'),
    nftDump: async () => exec('nft', ['-a', 'list', 'ruleset']),
    remove: async () => {
      await execa('ip', ['netns', 'del', name], { reject: false });
    },
  };
}
