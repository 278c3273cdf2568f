/**
 * What this host offers, read independently of opd's own code, so that tests derive their
 * expectations from the machine and assert them on either branch (no skips): machines of this
 * kind have /dev/kvm or not, loadable kernel modules or not, and differ in size.
 */
import { closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';

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

/** The running kernel can load modules (it has /lib/modules/<release> and /proc/modules). */
export function modulesLoadable(): boolean {
  const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return existsSync(`/lib/modules/${release}`) && existsSync('/proc/modules');
}
