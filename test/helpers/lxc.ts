/**
 * LXC next to a private Open vSwitch. ovs-vswitchd (netdev datapath, no kernel module) runs in
 * a network namespace of its own (scripts/backends/ovs.sh), so its bridges are tap devices of
 * that namespace. LXC attaches a veth to an OVS bridge only when the bridge is a netdev of the
 * namespace lxc-start runs in, so everything LXC here (opd, lxc-ls, …) runs inside that
 * namespace: `nsenter --net` plus a private mount namespace whose /sys is that namespace's
 * sysfs, with the host's cgroup tree moved back under it (cgroup limits still work).
 * On a host with the kernel datapath none of this is needed: the bridge is a host netdev.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPD, tmp } from './opd.js';
import { startOvs, type OvsSandbox } from './ovs.js';

const ENTER =
  'mount --rbind /sys/fs/cgroup "$0" && mount -t sysfs sysfs /sys && mount --move "$0" /sys/fs/cgroup && exec "$@"';

export interface LxcSandbox {
  ovs: OvsSandbox;
  netns: string;
  dir: string;
  lxcPath: string;
  env: Record<string, string>;
  /** run a command inside the sandbox's network namespace */
  sh(
    cmd: string,
    args: string[],
    opts?: { env?: Record<string, string> },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** the built CLI, inside the sandbox */
  opd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export async function startLxc(): Promise<LxcSandbox> {
  const ovs = await startOvs({ vswitchd: true });
  const netns = readFileSync(join(ovs.dir, 'netns'), 'utf8').trim();
  const dir = tmp('opd-lxc-');
  const cg = join(dir, 'cgroup-mnt');
  mkdirSync(cg);
  const lxcPath = join(dir, 'lxc');
  const env = {
    OPD_AUDIT_LOG: join(dir, 'audit.jsonl'),
    OPD_LXC_PATH: lxcPath,
    OPD_OVS_DB: ovs.db,
    OPD_LXC_STOP_TIMEOUT: '3',
    OPD_LOG_LEVEL: 'warn',
  };
  const sh: LxcSandbox['sh'] = async (cmd, args, opts = {}) => {
    const r = await execa(
      'nsenter',
      [`--net=/run/netns/${netns}`, '--', 'unshare', '-m', '--', 'sh', '-c', ENTER, cg, cmd, ...args],
      {
        reject: false,
        env: { ...env, ...opts.env },
        timeout: 300_000,
      },
    );
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  return {
    ovs,
    netns,
    dir,
    lxcPath,
    env,
    sh,
    opd: (args) => sh('node', [OPD, ...args]),
    stop: async () => {
      // kill every container of the lxcpath (only ours: the lxcpath is this sandbox's own)
      const ls = await sh('lxc-ls', ['-P', lxcPath, '-1']);
      for (const n of ls.stdout.split(/\s+/).filter(Boolean)) await sh('lxc-stop', ['-P', lxcPath, '-n', n, '-k']);
      await execa('rm', ['-rf', '--one-file-system', dir], { reject: false });
      await ovs.stop();
    },
  };
}
