/** A private ovsdb-server (and ovs-vswitchd in a netns of its own) for one test file. */
import { execa } from 'execa';
import { join } from 'node:path';
import { ROOT, tmp } from './opd.js';

export interface OvsSandbox {
  dir: string;
  db: string;
  vsctl(args: string[]): Promise<string>;
  /** the whole database as text (for "diff changed nothing" checks) */
  dump(): Promise<string>;
  stop(): Promise<void>;
}

export async function startOvs(opts: { vswitchd?: boolean } = {}): Promise<OvsSandbox> {
  const dir = tmp('opd-ovs-');
  const script = join(ROOT, 'scripts/backends/ovs.sh');
  await execa('bash', [script, 'up', dir, ...(opts.vswitchd ? ['--vswitchd'] : [])]);
  const db = `unix:${dir}/db.sock`;
  return {
    dir,
    db,
    vsctl: async (args) => (await execa('ovs-vsctl', [`--db=${db}`, '--timeout=20', ...args])).stdout,
    dump: async () => (await execa('ovsdb-client', ['dump', db, 'Open_vSwitch', '--format=json'])).stdout,
    stop: async () => {
      await execa('bash', [script, 'down', dir], { reject: false });
    },
  };
}
