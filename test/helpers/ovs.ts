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

/** Columns ovs-vswitchd keeps updating on its own (counters, link state): not configuration. */
const VOLATILE = new Set([
  'statistics',
  'status',
  'link_resets',
  'link_state',
  'link_speed',
  'admin_state',
  'mac_in_use',
  'ifindex',
  'lacp_current',
  'rstp_statistics',
  'rstp_status',
  'cur_cfg',
  'duplex',
  'mtu',
]);

/** A dump with the volatile columns blanked, so that it changes only when configuration does. */
export function stable(dump: string): string {
  return dump
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const t = JSON.parse(l) as { caption: string; headings: string[]; data: unknown[][] };
      const keep = t.headings.map((h) => !VOLATILE.has(h));
      return JSON.stringify({
        caption: t.caption,
        headings: t.headings.filter((_, i) => keep[i]),
        data: t.data.map((r) => r.filter((_, i) => keep[i])),
      });
    })
    .join('\n');
}

/** `dir`: where the database and its socket live (default: a fresh temp directory). */
export async function startOvs(opts: { vswitchd?: boolean; dir?: string } = {}): Promise<OvsSandbox> {
  const dir = opts.dir ?? tmp('opd-ovs-');
  const script = join(ROOT, 'scripts/backends/ovs.sh');
  await execa('bash', [script, 'up', dir, ...(opts.vswitchd ? ['--vswitchd'] : [])]);
  const db = `unix:${dir}/db.sock`;
  return {
    dir,
    db,
    vsctl: async (args) => (await execa('ovs-vsctl', [`--db=${db}`, '--timeout=20', ...args])).stdout,
    dump: async () => stable((await execa('ovsdb-client', ['dump', db, 'Open_vSwitch', '--format=json'])).stdout),
    stop: async () => {
      await execa('bash', [script, 'down', dir], { reject: false });
    },
  };
}
