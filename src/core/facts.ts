/**
 * Host facts: what a document may depend on about the machine it runs on (CPU vendor,
 * virtualization flags, /dev/kvm, whether kernel modules can be loaded, a container, the
 * distribution and its release, the architecture). One fact source, read once per run
 * (prepareLoaded), visible to the document as `${fact.NAME}` and `when: { NAME: value }`, shown by
 * `opd facts`, recorded in the run's `run.start` audit entry, and handed to the plugins
 * (ReadContext.facts) so that they never read the same thing again their own way.
 *
 * Reads are files only (/proc, /sys, /etc/os-release, /dev/kvm): no processes. `root` reads them
 * under another directory, so that a test can fake a host (an Intel or an AMD one).
 */
import { closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { cpus, machine, release } from 'node:os';
import { distance } from 'fastest-levenshtein';

export type FactValue = string | boolean | number;

export interface FactDef {
  type: 'string' | 'boolean' | 'integer';
  /** the values a string fact can take (others are not possible) */
  values?: readonly string[];
  description: string;
}

/** Every fact, by name. The schema's `when` (schema/common.schema.json) lists the same (a unit test compares them). */
export const FACTS = {
  arch: { type: 'string', description: 'the machine architecture, as uname -m: x86_64, aarch64, …' },
  container: {
    type: 'boolean',
    description:
      'opd runs in a container (systemd-nspawn, LXC, Docker, Podman…), as systemd sees it: units with ConditionVirtualization=!container do not start there',
  },
  cpu_vendor: {
    type: 'string',
    values: ['intel', 'amd', 'other'],
    description:
      'the CPU vendor (/proc/cpuinfo vendor_id): intel, amd or other; kvm_${fact.cpu_vendor} is its KVM module',
  },
  cpu_virt_flag: {
    type: 'string',
    values: ['vmx', 'svm', 'none'],
    description: "the CPU's hardware virtualization flag in /proc/cpuinfo: vmx (Intel VT-x), svm (AMD-V) or none",
  },
  cpus: { type: 'integer', description: 'the number of CPUs' },
  kernel: { type: 'string', description: 'the kernel release, as uname -r' },
  kvm_device: { type: 'boolean', description: '/dev/kvm exists and opens read-write' },
  memory_mb: { type: 'integer', description: 'MemTotal in MiB' },
  modules_loadable: {
    type: 'boolean',
    description:
      'kernel modules can be loaded here: the kernel has module support, /lib/modules/<release> exists, opd holds CAP_SYS_MODULE and modules are not disabled',
  },
  os_codename: {
    type: 'string',
    description: "the distribution release's code name (VERSION_CODENAME): bookworm, jammy, …",
  },
  os_id: { type: 'string', description: 'the distribution (/etc/os-release ID): debian, ubuntu, …' },
  os_version_id: { type: 'string', description: 'its release (VERSION_ID): 12, 24.04, …' },
} as const satisfies Record<string, FactDef>;

export type FactName = keyof typeof FACTS;
export const FACT_NAMES = Object.keys(FACTS).sort() as FactName[];

/** The facts of one host. `why` says, for a false boolean, what made it false. */
export interface HostFacts {
  values: Record<FactName, FactValue>;
  why: Partial<Record<FactName, string>>;
}

export interface FactSourceOptions {
  /** Read /proc, /sys, /etc, /dev and /lib under this directory instead of / (tests fake hosts). */
  root?: string;
  /** uname -m (default: this process's) */
  arch?: string;
}

const CAP_SYS_MODULE = 16;

function text(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/** Intel-compatible VT-x vendors and AMD-compatible AMD-V ones (kvm_intel / kvm_amd). */
export function vendorOf(vendorId: string): 'intel' | 'amd' | 'other' {
  const v = vendorId.trim();
  if (v === 'GenuineIntel' || v === 'CentaurHauls' || v === 'Shanghai') return 'intel';
  if (v === 'AuthenticAMD' || v === 'HygonGenuine') return 'amd';
  return 'other';
}

function osRelease(root: string): Record<string, string> {
  const t = text(`${root}/etc/os-release`) ?? text(`${root}/usr/lib/os-release`) ?? '';
  const kv: Record<string, string> = {};
  for (const line of t.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) kv[m[1]] = m[2].replace(/^["']|["']$/g, '');
  }
  return kv;
}

/** /dev/kvm opens read-write (what QEMU and Firecracker need), or why not. */
function kvmUsable(root: string): true | string {
  try {
    closeSync(openSync(`${root}/dev/kvm`, constants.O_RDWR));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? '/dev/kvm does not exist' : `/dev/kvm cannot be opened (${code})`;
  }
}

/** Kernel modules can be loaded here, or why not (the first reason found). The kmod plugin asks the same at apply. */
export function modulesLoadable(root = '', kernel = release()): true | string {
  if (text(`${root}/proc/modules`) === undefined)
    return '/proc/modules does not exist (a kernel without loadable module support)';
  if (text(`${root}/proc/sys/kernel/modules_disabled`)?.trim() === '1')
    return 'module loading is disabled (kernel.modules_disabled = 1)';
  if (!existsSync(`${root}/lib/modules/${kernel}`))
    return `/lib/modules/${kernel} does not exist (no modules for this kernel here)`;
  const eff = /^CapEff:\s*([0-9a-f]+)/m.exec(text(`${root}/proc/self/status`) ?? '')?.[1];
  if (eff !== undefined && (BigInt(`0x${eff}`) & (1n << BigInt(CAP_SYS_MODULE))) === 0n)
    return 'opd lacks CAP_SYS_MODULE (a container, or a unit without that capability)';
  return true;
}

/** The container manager, as systemd-detect-virt --container finds it; undefined on a host. */
function containerOf(root: string): string | undefined {
  if (existsSync(`${root}/proc/vz`) && !existsSync(`${root}/proc/bc`)) return 'openvz';
  const osr = text(`${root}/proc/sys/kernel/osrelease`) ?? '';
  if (/Microsoft|WSL/.test(osr)) return 'wsl';
  for (const f of ['/run/host/container-manager', '/run/systemd/container']) {
    const t = text(`${root}${f}`)?.trim();
    if (t) return t;
  }
  const env = text(`${root}/proc/1/environ`);
  const m = env ? /(?:^|\0)container=([^\0]+)/.exec(env) : null;
  if (m) return m[1];
  if (existsSync(`${root}/run/.containerenv`)) return 'podman';
  if (existsSync(`${root}/.dockerenv`)) return 'docker';
  return undefined;
}

/** Read the host's facts (a handful of small files). */
export function readHostFacts(o: FactSourceOptions = {}): HostFacts {
  const root = o.root ?? '';
  const cpuinfo = text(`${root}/proc/cpuinfo`) ?? '';
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  const kernel = (text(`${root}/proc/sys/kernel/osrelease`) ?? (root ? '' : release())).trim() || release();
  const processors = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(text(`${root}/proc/meminfo`) ?? '')?.[1] ?? 0);
  const os = osRelease(root);
  const kvm = kvmUsable(root);
  const modules = modulesLoadable(root, kernel);
  const container = containerOf(root);
  const why: HostFacts['why'] = {};
  if (kvm !== true) why.kvm_device = kvm;
  if (modules !== true) why.modules_loadable = modules;
  if (container) why.container = `container manager: ${container}`;
  const values: Record<FactName, FactValue> = {
    arch: o.arch ?? machine(),
    container: container !== undefined,
    cpu_vendor: vendorOf(/^vendor_id\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? ''),
    cpu_virt_flag: /\bvmx\b/.test(flags) ? 'vmx' : /\bsvm\b/.test(flags) ? 'svm' : 'none',
    cpus: processors || (root ? 0 : cpus().length),
    kernel,
    kvm_device: kvm === true,
    memory_mb: Math.floor(memKb / 1024),
    modules_loadable: modules === true,
    os_codename: os.VERSION_CODENAME ?? '',
    os_id: os.ID ?? 'unknown',
    os_version_id: os.VERSION_ID ?? '',
  };
  return { values, why };
}

/** The facts as the audit trail and `opd facts -o json` show them: sorted names. */
export function factsJSON(f: HostFacts): Record<string, FactValue> {
  return Object.fromEntries(FACT_NAMES.map((n) => [n, f.values[n]]));
}

/** "did you mean …?" for a misspelt fact name (or the list of facts). */
export function factHint(name: string): string {
  const close = FACT_NAMES.filter((n) => distance(n, name) <= 3).sort((a, b) => distance(a, name) - distance(b, name));
  return close.length
    ? `did you mean ${close.map((c) => `"${c}"`).join(' or ')}? (opd facts lists them)`
    : `facts are: ${FACT_NAMES.join(', ')} (opd facts shows this host's)`;
}

export function isFactName(name: string): name is FactName {
  return Object.hasOwn(FACTS, name);
}

/** Does a `when:` condition hold on this host? Every named fact must equal the value (or one of the list). */
export function whenHolds(cond: Record<string, unknown>, f: HostFacts): boolean {
  for (const [name, want] of Object.entries(cond)) {
    if (!isFactName(name)) return false;
    const have = f.values[name];
    const wanted = Array.isArray(want) ? want : [want];
    if (!wanted.some((w) => w === have)) return false;
  }
  return true;
}

/** Why a `when:` condition does not hold: `modules_loadable is false (…), needs true`. */
export function whenFailure(cond: Record<string, unknown>, f: HostFacts): string {
  const out: string[] = [];
  for (const [name, want] of Object.entries(cond)) {
    if (!isFactName(name)) continue;
    const have = f.values[name];
    const wanted = Array.isArray(want) ? want : [want];
    if (wanted.some((w) => w === have)) continue;
    const why = f.why[name] && have === false ? ` (${f.why[name]})` : '';
    out.push(`${name} is ${JSON.stringify(have)}${why}, needs ${wanted.map((w) => JSON.stringify(w)).join(' or ')}`);
  }
  return out.join('; ');
}
