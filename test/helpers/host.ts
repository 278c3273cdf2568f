/**
 * What this host offers, read independently of opd's own code, so that tests derive their
 * expectations from the machine and assert them on either branch (no skips): machines of this
 * kind have /dev/kvm or not, loadable kernel modules or not, and differ in size.
 */
import { closeSync, constants, existsSync, openSync, readFileSync, statfsSync } from 'node:fs';
import { cpus, machine } from 'node:os';
import { dirname, resolve } from 'node:path';

/** /dev/kvm exists and opens read-write (what QEMU needs for KVM acceleration). */
export function kvmUsable(): boolean {
  try {
    closeSync(openSync('/dev/kvm', constants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}

/** vmx or svm among the CPU flags. */
export function virtFlags(): boolean {
  return /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

/** The libvirt domain type guests get here: `kvm` with a usable /dev/kvm, else `qemu` (TCG). */
export function virtType(): 'kvm' | 'qemu' {
  return kvmUsable() ? 'kvm' : 'qemu';
}

export function memMb(): number {
  const kb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  return Math.floor(kb / 1024);
}

export function cpuCount(): number {
  return cpus().length;
}

export function diskFreeMb(path: string): number {
  let p = resolve(path);
  while (!existsSync(p) && p !== '/') p = dirname(p);
  const s = statfsSync(p);
  return Math.floor((Number(s.bavail) * Number(s.bsize)) / (1024 * 1024));
}

/**
 * The fields of a checks-plugin requirement that cannot hold on this host (KVM, size): the test
 * asserts that the example is blocked by exactly these, then runs it without them.
 */
export function unmetChecks(spec: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (spec.cpu_virtualization === true && !virtFlags() && !kvmUsable()) out.push('cpu_virtualization');
  if (spec.kvm_device === true && !kvmUsable()) out.push('kvm_device');
  if (typeof spec.min_memory_mb === 'number' && memMb() < spec.min_memory_mb) out.push('min_memory_mb');
  if (typeof spec.min_cpus === 'number' && cpuCount() < spec.min_cpus) out.push('min_cpus');
  if (Array.isArray(spec.arch) && !spec.arch.includes(machine())) out.push('arch');
  const disk = spec.min_disk_free_mb as Record<string, number> | undefined;
  if (disk && Object.entries(disk).some(([p, mb]) => diskFreeMb(p) < mb)) out.push('min_disk_free_mb');
  return out;
}

/** The running kernel can load modules (it has /lib/modules/<release> and /proc/modules). */
export function modulesLoadable(): boolean {
  const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return existsSync(`/lib/modules/${release}`) && existsSync('/proc/modules');
}

/** Whether `modprobe kvm_amd` can succeed here: an AMD CPU with svm on a kernel that loads modules, or it is loaded. */
export function kvmAmdLoads(): boolean {
  if (existsSync('/sys/module/kvm_amd')) return true;
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return modulesLoadable() && /^vendor_id\s*:\s*AuthenticAMD/m.test(cpuinfo) && /^flags\s*:.*\bsvm\b/m.test(cpuinfo);
}
