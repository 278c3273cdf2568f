/**
 * What this host offers, read independently of opd's own code, so that tests derive their
 * expectations from the machine and assert them on either branch (no skips): machines of this
 * kind have /dev/kvm or not, loadable kernel modules or not, and differ in size.
 */
import { closeSync, constants, existsSync, openSync, readFileSync, statfsSync } from 'node:fs';
import { cpus } from 'node:os';
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

/** The running kernel can load modules (it has /lib/modules/<release> and /proc/modules). */
export function modulesLoadable(): boolean {
  const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return existsSync(`/lib/modules/${release}`) && existsSync('/proc/modules');
}
