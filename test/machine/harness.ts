/**
 * The machine harness: each example exactly as shipped, on a booted Debian 12 machine.
 *
 * - The image (test/machine/image.sh): Debian 12 as debootstrap makes it, from Debian's mirror
 *   with mmdebstrap, cached under OPD_MACHINE_CACHE (default /var/cache/opd-machine) by the
 *   sha256 of its package lists; beside it a local apt repository with exactly the .debs the
 *   examples install, which is the machine's only apt source (bind-mounted at /srv/opd-repo).
 *   Nothing the examples install is in the image; policy-rc.d keeps package scripts from starting
 *   services, so what runs was started by opd.
 * - A machine: a copy of the image booted by systemd-nspawn with systemd as PID 1 (D-Bus, logind,
 *   the distribution's own units), the built checkout read-only at /opt/opd (opd at /usr/bin/opd,
 *   the shipped opd-boot.service in /lib/systemd/system), the host's node binary at
 *   /usr/local/bin/node (Debian 12's nodejs is 18; opd needs >= 20.11), /dev/kvm where the host
 *   has it (OPD_MACHINE_KVM=0 leaves it out), and one NIC, enp1s0, a veth whose other end is in
 *   an "upstream" network namespace holding the gateway 192.168.1.1. The host's native network
 *   configuration (ifupdown) gives enp1s0 192.168.1.10/24 at every boot. No route leads out.
 * - Reboot = power off (SIGTERM to nspawn: the machine shuts down) and boot again with fresh
 *   network namespaces (every runtime network state is gone; the disk stays).
 * - Processes inside are reached with nsenter on the machine's init, with a clean environment:
 *   parameters reach opd only through the machine's vars file (/etc/opd/vars.yaml) and secret
 *   files, never --var or OPD_VAR_*.
 *
 * Safety on a shared machine: every machine has its own directory and network namespaces (unique
 * names); only processes this harness started are stopped, by their pid.
 */
import { execa, type ResultPromise } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../helpers/opd.js';

export const EXAMPLES = join(ROOT, 'examples');
export const GUIDES = [
  'quantix-kvm-node.yaml',
  'nqrust-microvm-host.yaml',
  'opdbus-full-mode.yaml',
  'hyper2kvm-daemon.yaml',
  'ravada-server.yaml',
] as const;
export const CACHE = process.env.OPD_MACHINE_CACHE || '/var/cache/opd-machine';
export const MACHINES = process.env.OPD_MACHINE_DIR || '/var/tmp/opd-machines';
/** Where the machine tests write their timings and results (the coverage table is made from them). */
export const RESULTS = join(ROOT, 'test-results-machine');
/** The machine's own addressing (its native network configuration) and its upstream gateway. */
export const NET = { address: '192.168.1.10', prefix: 24, gateway: '192.168.1.1', nic: 'enp1s0' } as const;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Image {
  dir: string;
  key: string;
  /** seconds the build took when it was built (cold) */
  buildSeconds: number;
  /** seconds this call took (about 0 when cached) */
  seconds: number;
  cached: boolean;
  debs: number;
  repoBytes: number;
}

/** The package names an example installs (packages.installed keys), as written in the file. */
export function packagesOf(example: string): string[] {
  const d = parse(readFileSync(join(EXAMPLES, example), 'utf8')) as {
    plugins?: { packages?: { installed?: Record<string, unknown> } };
  };
  return Object.keys(d.plugins?.packages?.installed ?? {})
    .filter((n) => !n.includes('${'))
    .sort();
}

/** Build or reuse the image for the examples' package lists. */
export async function ensureImage(): Promise<Image> {
  const lists = join(CACHE, '.lists');
  mkdirSync(lists, { recursive: true });
  const files = GUIDES.map((g) => {
    const f = join(lists, g.replace(/\.ya?ml$/, '.txt'));
    writeFileSync(f, packagesOf(g).join('\n') + '\n');
    return f;
  });
  const t0 = Date.now();
  const r = await execa('bash', [join(ROOT, 'test/machine/image.sh'), CACHE, ...files], {
    reject: false,
    timeout: 40 * 60_000,
  });
  if (r.exitCode !== 0) throw new Error(`building the machine image failed (exit ${r.exitCode}):\n${r.stderr}`);
  const dir = String(r.stdout).trim().split('\n').pop()!;
  const b = JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as {
    key: string;
    seconds: number;
    debs: number;
    repo_bytes: number;
  };
  const seconds = (Date.now() - t0) / 1000;
  return {
    dir,
    key: b.key,
    buildSeconds: b.seconds,
    seconds,
    cached: seconds < b.seconds / 2,
    debs: b.debs,
    repoBytes: b.repo_bytes,
  };
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface AuditEntry {
  seq: number;
  run: string;
  type: string;
  [k: string]: unknown;
}

export function parseAudit(text: string): AuditEntry[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);
}

/**
 * The document opd applied must be the shipped file, byte for byte: every run.start of `file`
 * in the audit trail records the sha256 of the document opd read (src/run/record.ts); each must
 * be the sha256 of examples/<example>. Returns what differs (empty: all are the shipped file).
 */
export function notShipped(entries: AuditEntry[], file: string, example: string): string[] {
  const want = sha256(readFileSync(join(EXAMPLES, example)));
  const runs = entries.filter((e) => e.type === 'run.start' && e.file === file);
  if (!runs.length) return [`no run of ${file} in the audit trail`];
  return runs
    .filter((e) => e.document !== want)
    .map(
      (e) =>
        `run ${e.run} applied ${file} with sha256 ${String(e.document).slice(0, 16)}…, not the shipped examples/${example} (${want.slice(0, 16)}…)`,
    );
}

/** Timings of one machine test, written to test-results-machine/<name>.json. */
export class Timings {
  private readonly t: Record<string, number> = {};
  constructor(readonly name: string) {}
  async time<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      this.t[what] = (this.t[what] ?? 0) + (Date.now() - t0) / 1000;
      mkdirSync(RESULTS, { recursive: true });
      writeFileSync(join(RESULTS, `${this.name}.json`), JSON.stringify(this.t, null, 2) + '\n');
    }
  }
}

async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string, ms: number) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A machine's own cgroups, created for it: one in each hierarchy that tracks processes (the v2
 * hierarchy, and the v1 name=systemd one where the host mounts it), under the cgroup this process
 * is in. systemd-nspawn without a host systemd (--register=no --keep-unit) gives the machine the
 * cgroup nspawn runs in; two machines booted from one process would share one tree, and each
 * machine's systemd would create, kill and remove the other's service cgroups (seen in CI: a
 * freshly booted machine's ifupdown-pre.service failed with status=219/CGROUP).
 */
function cgroupsFor(id: string): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => {
      const [pre, post] = l.split(' - ');
      if (!post) return undefined;
      const [fstype, , opts] = post.split(' ');
      return { point: pre.split(' ')[4], fstype, opts: opts ?? '' };
    })
    .filter((m): m is { point: string; fstype: string; opts: string } => !!m);
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const dirs: string[] = [];
  const v2 = mounts.find((m) => m.fstype === 'cgroup2');
  const v2path = own.find((l) => l.startsWith('0::'))?.slice(3);
  if (v2 && v2path !== undefined) dirs.push(join(v2.point, v2path, `opd-machine-${id}`));
  const named = mounts.find((m) => m.fstype === 'cgroup' && m.opts.split(',').includes('name=systemd'));
  const namedPath = own.map((l) => l.split(':')).find((f) => f[1] === 'name=systemd')?.[2];
  if (named && namedPath !== undefined) dirs.push(join(named.point, namedPath, `opd-machine-${id}`));
  if (!dirs.length) throw new Error('no cgroup hierarchy to give the machine its own cgroup (/proc/self/mountinfo)');
  for (const d of dirs) mkdirSync(d, { recursive: true });
  return dirs;
}

/** Remove a machine's cgroup tree, deepest first (cgroup directories are removed with rmdir; one still holding a process stays). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // busy: a process of the machine is still in it; the next run's machines have their own names
  }
}

/** One booted Debian 12 machine. */
export class Machine {
  readonly id = `opdm${randomBytes(3).toString('hex')}`;
  readonly dir: string;
  readonly root: string;
  /** the machine's network namespace (recreated at every boot) and the upstream one */
  readonly netns: string;
  readonly upstream: string;
  readonly kvm: boolean;
  boots = 0;
  private nspawn: ResultPromise | undefined;
  private init = 0;
  private log = '';
  private cgroups: string[] = [];

  constructor(
    readonly name: string,
    readonly image: Image,
  ) {
    this.dir = join(MACHINES, `${name}-${this.id}`);
    this.root = join(this.dir, 'root');
    this.netns = this.id;
    this.upstream = `${this.id}-up`;
    this.kvm = existsSync('/dev/kvm') && process.env.OPD_MACHINE_KVM !== '0';
  }

  /** A fresh copy of the image, with opd installed as a package would install it, and the host's network configuration. */
  async create(): Promise<void> {
    mkdirSync(this.root, { recursive: true });
    chmodSync(this.dir, 0o755);
    const r = await execa('tar', ['-xf', join(this.image.dir, 'rootfs.tar'), '-C', this.root], { reject: false });
    if (r.exitCode !== 0) throw new Error(`cannot unpack the image: ${r.stderr}`);
    // opd: the built checkout (read-only bind mount at /opt/opd), its command and its boot unit
    mkdirSync(join(this.root, 'opt/opd'), { recursive: true });
    symlinkSync('/opt/opd/bin/opd.js', join(this.root, 'usr/bin/opd'));
    copyFileSync(
      join(ROOT, 'packaging/systemd/opd-boot.service'),
      join(this.root, 'lib/systemd/system/opd-boot.service'),
    );
    mkdirSync(join(this.root, 'etc/opd/secrets'), { recursive: true, mode: 0o700 });
    // the host's native network configuration (ifupdown, networking.service)
    this.writeFile(
      '/etc/network/interfaces.d/enp1s0',
      `auto ${NET.nic}\niface ${NET.nic} inet static\n    address ${NET.address}/${NET.prefix}\n    gateway ${NET.gateway}\n`,
    );
  }

  /** A file of the machine, as seen from the host (its disk). */
  path(p: string): string {
    return join(this.root, p);
  }

  writeFile(p: string, content: string, mode = 0o644): void {
    mkdirSync(dirname(this.path(p)), { recursive: true });
    writeFileSync(this.path(p), content, { mode });
    chmodSync(this.path(p), mode);
  }

  readFile(p: string): string {
    return readFileSync(this.path(p), 'utf8');
  }

  /** The machine's audit trail (opd's default, /var/lib/opd/audit.jsonl). */
  audit(): AuditEntry[] {
    const f = this.path('/var/lib/opd/audit.jsonl');
    return existsSync(f) ? parseAudit(readFileSync(f, 'utf8')) : [];
  }

  private async net(): Promise<void> {
    for (const ns of [this.netns, this.upstream]) await execa('ip', ['netns', 'del', ns], { reject: false });
    await execa('ip', ['netns', 'add', this.netns]);
    await execa('ip', ['netns', 'add', this.upstream]);
    await execa('ip', [
      'link',
      'add',
      NET.nic,
      'netns',
      this.netns,
      'type',
      'veth',
      'peer',
      'name',
      'uplink0',
      'netns',
      this.upstream,
    ]);
    const up = (args: string[]) => execa('ip', ['-n', this.upstream, ...args]);
    await up(['link', 'set', 'lo', 'up']);
    await up(['link', 'set', 'uplink0', 'up']);
    await up(['addr', 'add', `${NET.gateway}/${NET.prefix}`, 'dev', 'uplink0']);
  }

  /** Power on: fresh network namespaces, systemd as PID 1, until `systemctl is-system-running --wait` answers. */
  async boot(): Promise<string> {
    if (this.nspawn) throw new Error(`${this.name} is already running`);
    await this.net();
    const repo = join(this.image.dir, 'repo');
    const args = [
      '--register=no',
      '--keep-unit',
      '-q',
      '-b',
      '-D',
      this.root,
      '-M',
      this.id,
      // its own network namespace, prepared with the NIC; --private-network makes /proc/sys/net writable
      '--private-network',
      `--network-namespace-path=/run/netns/${this.netns}`,
      '--console=passive',
      `--bind-ro=${ROOT}:/opt/opd`,
      `--bind-ro=${process.execPath}:/usr/local/bin/node`,
      `--bind-ro=${repo}:/srv/opd-repo`,
      ...(this.kvm ? ['--bind=/dev/kvm'] : []),
    ];
    this.log = join(this.dir, `boot-${++this.boots}.log`);
    // nspawn runs in its own cgroup (see cgroupsFor): a trampoline moves itself there, then execs nspawn
    const cgroups = cgroupsFor(this.id);
    this.cgroups = cgroups;
    this.nspawn = execa(
      'sh',
      [
        '-c',
        'for d in "$@"; do [ "$d" = -- ] && break; echo $$ > "$d/cgroup.procs" || exit 125; shift; done; shift; exec systemd-nspawn "$@"',
        'sh',
        ...cgroups,
        '--',
        ...args,
      ],
      {
        reject: false,
        stdin: 'ignore',
        stdout: { file: this.log },
        stderr: { file: this.log },
      },
    );
    const pid = this.nspawn.pid!;
    this.init = await until(
      async () => {
        if (this.nspawn?.exitCode !== null && this.nspawn?.exitCode !== undefined)
          throw new Error(`systemd-nspawn exited ${this.nspawn.exitCode}: ${readFileSync(this.log, 'utf8')}`);
        const r = await execa('ps', ['--ppid', String(pid), '-o', 'pid=,comm='], { reject: false });
        const line = String(r.stdout)
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .find(([, comm]) => comm === 'systemd');
        return line ? Number(line[0]) : undefined;
      },
      `${this.name}: systemd as PID 1`,
      60_000,
    );
    const own = readFileSync(`/proc/${this.init}/cgroup`, 'utf8');
    if (!own.includes(`/opd-machine-${this.id}`))
      throw new Error(`${this.name}: the machine's init is not in its own cgroup:\n${own}`);
    await until(
      () => existsSync(`/proc/${this.init}/root/run/dbus/system_bus_socket`),
      `${this.name}: the system bus`,
      60_000,
    );
    const s = await this.exec(['systemctl', 'is-system-running', '--wait'], { timeout: 300_000 });
    return s.stdout.trim();
  }

  /** Run a command inside the machine (all its namespaces), as root with a clean environment. */
  async exec(argv: string[], o: { env?: Record<string, string>; input?: string; timeout?: number } = {}): Promise<Run> {
    if (!this.init) throw new Error(`${this.name} is not running`);
    const r = await execa('nsenter', ['-t', String(this.init), '-a', '--', ...argv], {
      reject: false,
      extendEnv: false,
      env: { PATH, HOME: '/root', LANG: 'C.UTF-8', ...o.env },
      input: o.input,
      timeout: o.timeout ?? 1_200_000,
    });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** `opd …` inside the machine: its own /usr/bin/opd, no parameters but the machine's vars file. */
  opd(args: string[], env: Record<string, string> = {}): Promise<Run> {
    return this.exec(['opd', ...args], { env: { OPD_LOG_LEVEL: 'warn', ...env } });
  }

  async systemctl(args: string[]): Promise<string> {
    return (await this.exec(['systemctl', ...args])).stdout.trim();
  }

  /** `systemctl show` properties of a unit. */
  async unit(name: string, props: string[]): Promise<Record<string, string>> {
    const out = await this.systemctl(['show', name, ...props.map((p) => `-p${p}`)]);
    return Object.fromEntries(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  /** A command in the upstream namespace (the other end of the machine's NIC). */
  async upstreamExec(argv: string[]): Promise<Run> {
    const r = await execa('ip', ['netns', 'exec', this.upstream, ...argv], { reject: false, timeout: 60_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** Connect from the upstream namespace (from `source`): 'ok' when the server answers, else why not (3 s at most). */
  async reach(host: string, port: number, source?: string): Promise<string> {
    const js = `const s=require('net').connect({host:${JSON.stringify(host)},port:${port},timeout:3000${source ? `,localAddress:${JSON.stringify(source)}` : ''}});s.on('data',d=>{console.log(String(d).trim());process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})`;
    return (await this.upstreamExec([process.execPath, '-e', js])).stdout.trim();
  }

  /** A TCP server inside the machine answering "ok" (a transient unit of the machine's systemd; gone at power-off). */
  async listen(port: number): Promise<void> {
    const r = await this.exec([
      'systemd-run',
      `--unit=opd-test-listen-${port}`,
      '/usr/local/bin/node',
      '-e',
      `require('net').createServer(s=>s.end('ok')).listen(${port})`,
    ]);
    if (r.code !== 0) throw new Error(`cannot listen on ${port}: ${r.stderr}`);
    await until(
      async () => (await this.exec(['ss', '-Hltn', `sport = :${port}`])).stdout.includes(`:${port}`),
      `port ${port} listening`,
      30_000,
    );
  }

  /** Power off: the machine shuts down cleanly (SIGTERM to nspawn); its network namespaces go. */
  async powerOff(): Promise<void> {
    const p = this.nspawn;
    if (!p) return;
    p.kill('SIGTERM');
    const killer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    await p;
    clearTimeout(killer);
    this.nspawn = undefined;
    this.init = 0;
    for (const d of this.cgroups) removeCgroup(d);
    this.cgroups = [];
    for (const ns of [this.netns, this.upstream]) await execa('ip', ['netns', 'del', ns], { reject: false });
  }

  /** Reboot: power off, then boot again with fresh network namespaces. */
  async reboot(): Promise<string> {
    await this.powerOff();
    return this.boot();
  }

  /** Power off and remove the machine's directory. */
  async destroy(): Promise<void> {
    await this.powerOff();
    if (this.dir.startsWith(MACHINES + '/') && existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The example's run.start entries in a machine's audit trail. */
export function runsOf(entries: AuditEntry[], file: string): AuditEntry[] {
  return entries.filter((e) => e.type === 'run.start' && e.file === file);
}

/** Whether opd itself started a unit: a `change` entry of that unit's start that succeeded. */
export function startedByOpd(entries: AuditEntry[], unit: string): boolean {
  return entries.some(
    (e) => e.type === 'change' && e.address === `systemd/units/${unit}` && e.action === 'start' && e.result === 'ok',
  );
}

/** The image the global setup built or found (test/machine/global-setup.ts). */
export function builtImage(): Image {
  return JSON.parse(readFileSync(join(RESULTS, 'image.json'), 'utf8')) as Image;
}
