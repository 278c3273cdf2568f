/**
 * The smallest booted Debian 12 machine the package test needs: a minbase image with systemd,
 * D-Bus, man-db and bash-completion (mmdebstrap, cached by its package list under
 * OPD_MACHINE_CACHE, default /var/cache/opd-machine), a fresh copy per machine, booted by
 * systemd-nspawn with systemd as PID 1 and no network at all (--private-network: nothing beyond
 * the image is reachable, so a package that needs anything outside Debian's base fails to install).
 * Processes inside are reached with nsenter on the machine's init.
 *
 * It follows the interface of the machine harness of test/machine/harness.ts (create, boot, exec,
 * powerOff); when that harness offers a machine without opd preinstalled, this file can give way
 * to it. Safety on a shared machine: each machine has its own directory; only the nspawn process
 * started here is stopped, by its pid.
 */
import { execa, type ResultPromise } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const CACHE = process.env.OPD_MACHINE_CACHE || '/var/cache/opd-machine';
const MACHINES = process.env.OPD_MACHINE_DIR || '/var/tmp/opd-machines';
const SUITE = 'bookworm';
const MIRROR = process.env.OPD_MACHINE_MIRROR || 'http://deb.debian.org/debian';
/** What a freshly installed Debian server has that the test uses: systemd as init, D-Bus, man, completion. */
export const IMAGE_PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'udev', 'iproute2', 'man-db', 'bash-completion'];
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
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

/** The image (rootfs.tar), built once per package list; returns its path and whether it was cached. */
export async function baseImage(): Promise<{ tar: string; cached: boolean; seconds: number }> {
  const key = createHash('sha256')
    .update(`${SUITE} ${MIRROR} minbase ${IMAGE_PACKAGES.join(',')}`)
    .digest('hex')
    .slice(0, 16);
  const dir = join(CACHE, `package-${key}`);
  const tar = join(dir, 'rootfs.tar');
  if (existsSync(tar)) return { tar, cached: true, seconds: 0 };
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  // mmdebstrap picks the output format from the name: keep .tar last
  const tmp = join(dir, `rootfs.${process.pid}.tmp.tar`);
  const r = await execa(
    'flock',
    [
      join(dir, '.lock'),
      'mmdebstrap',
      '--variant=minbase',
      `--include=${IMAGE_PACKAGES.join(',')}`,
      '--customize-hook=echo opd-package-test > "$1/etc/hostname"',
      '--customize-hook=: > "$1/etc/machine-id"',
      SUITE,
      tmp,
      MIRROR,
    ],
    { reject: false, timeout: 20 * 60_000 },
  );
  if (existsSync(tar)) return { tar, cached: true, seconds: (Date.now() - t0) / 1000 }; // another run built it
  if (r.exitCode !== 0) throw new Error(`mmdebstrap failed (exit ${r.exitCode}):\n${String(r.stderr).slice(-3000)}`);
  renameSync(tmp, tar);
  return { tar, cached: false, seconds: (Date.now() - t0) / 1000 };
}

export class PackageMachine {
  readonly id = `opdp${randomBytes(3).toString('hex')}`;
  readonly dir: string;
  readonly root: string;
  private nspawn: ResultPromise | undefined;
  private init = 0;
  private log = '';

  constructor(readonly name: string) {
    this.dir = join(MACHINES, `${name}-${this.id}`);
    this.root = join(this.dir, 'root');
  }

  /** A fresh copy of the image. */
  async create(tar: string): Promise<void> {
    mkdirSync(this.root, { recursive: true });
    const r = await execa('tar', ['-xf', tar, '-C', this.root], { reject: false });
    if (r.exitCode !== 0) throw new Error(`cannot unpack the image: ${r.stderr}`);
  }

  /** A path of the machine's disk, as the host sees it. */
  path(p: string): string {
    return join(this.root, p);
  }

  exists(p: string): boolean {
    return existsSync(this.path(p));
  }

  mode(p: string): number {
    return statSync(this.path(p)).mode & 0o7777;
  }

  read(p: string): string {
    return readFileSync(this.path(p), 'utf8');
  }

  /** Power on with systemd as PID 1; resolves with `systemctl is-system-running --wait`. */
  async boot(): Promise<string> {
    if (this.nspawn) throw new Error(`${this.name} is already running`);
    this.log = join(this.dir, 'boot.log');
    this.nspawn = execa(
      'systemd-nspawn',
      [
        '--register=no',
        '--keep-unit',
        '-q',
        '-b',
        '-D',
        this.root,
        '-M',
        this.id,
        '--private-network',
        '--console=passive',
      ],
      { reject: false, stdin: 'ignore', stdout: { file: this.log }, stderr: { file: this.log } },
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
    await until(
      () => existsSync(`/proc/${this.init}/root/run/dbus/system_bus_socket`),
      `${this.name}: the system bus`,
      120_000,
    );
    return (await this.exec(['systemctl', 'is-system-running', '--wait'], { timeout: 300_000 })).stdout.trim();
  }

  /** A command inside the machine (all its namespaces), as root with a clean environment. */
  async exec(argv: string[], o: { env?: Record<string, string>; input?: string; timeout?: number } = {}): Promise<Run> {
    if (!this.init) throw new Error(`${this.name} is not running`);
    const r = await execa('nsenter', ['-t', String(this.init), '-a', '--', ...argv], {
      reject: false,
      extendEnv: false,
      env: { PATH, HOME: '/root', LANG: 'C.UTF-8', TERM: 'dumb', ...o.env },
      input: o.input,
      timeout: o.timeout ?? 600_000,
    });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** Power off (SIGTERM to nspawn: the machine shuts down), then remove its directory. */
  async destroy(): Promise<void> {
    const p = this.nspawn;
    if (p) {
      p.kill('SIGTERM');
      const killer = setTimeout(() => p.kill('SIGKILL'), 120_000);
      await p;
      clearTimeout(killer);
      this.nspawn = undefined;
      this.init = 0;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
