/**
 * checks: read-only preconditions (CPU virtualization, /dev/kvm, memory, CPUs, free disk, free
 * TCP ports, kernel version, OS). A check that holds reads back as the document says, so it
 * never makes a change; a failed one is a preflight finding, and the core then applies nothing
 * (`require:`), or a warning that blocks nothing (`recommend:`). The host's facts come from the
 * run's one fact source (ctx.facts); free disk and listening ports are measured here.
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Finding, Obj, Plugin } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import { OpdError } from '../../core/errors.js';
import { foreignListening } from './holders.js';
import type { Check, Command as CommandCheck } from './section.gen.js';
import { readHostFacts, type HostFacts } from '../../core/facts.js';
import {
  commandEdges,
  normalizeCommands,
  planCommand,
  readCommands,
  runCheck,
  type CheckChangeData,
} from './commands.js';
import { applyEach } from '../../core/plugin.js';

/** What the host has instead, for a requirement that fails where the document can only say `true` or a list. */
interface Measured {
  /** why not */
  cpu_virtualization: string;
  kvm_device: string;
  /** a free size, or why it could not be measured */
  min_disk_free_mb: Record<string, number | string>;
  arch: string;
}

/**
 * A check set: the document's (Check, generated from schema/checks.schema.json, npm run gen:types),
 * or as read, where a requirement that holds reads back as desired and a failed one as what the
 * host has.
 */
export type CheckState = { [K in keyof Check]?: K extends keyof Measured ? Check[K] | Measured[K] : Check[K] };
export type ChecksSection = {
  require?: Record<string, CheckState>;
  recommend?: Record<string, CheckState>;
  commands?: Record<string, CommandCheck>;
  /** read only: command checks that do not hold (address → why), turned into faults */
  command_failures?: Record<string, string>;
} & Obj;

/** Host facts, read once per run. */
export interface Facts {
  virtFlags: boolean;
  kvm: string | true;
  memMb: number;
  cpus: number;
  kernel: string;
  /** uname -m (x86_64, aarch64, …) */
  arch: string;
  os: { id: string; idLike: string[]; versionId: string };
  listening: Set<number>;
  diskFreeMb(path: string): number | string;
}

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function listeningPorts(): Set<number> {
  const out = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readText(f).split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue; // 0A = LISTEN
      const port = parseInt(cols[1].split(':').pop() ?? '', 16);
      if (Number.isFinite(port)) out.add(port);
    }
  }
  return out;
}

function osRelease(): Facts['os'] {
  const text = readText('/etc/os-release') || readText('/usr/lib/os-release');
  const kv: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) kv[m[1]] = m[2].replace(/^["']|["']$/g, '');
  }
  return {
    id: kv.ID ?? 'unknown',
    idLike: (kv.ID_LIKE ?? '').split(/\s+/).filter(Boolean),
    versionId: kv.VERSION_ID ?? '',
  };
}

/** The checks' view of the host: the run's facts (one fact source, src/core/facts.ts) and what only checks measure. */
export function readFacts(facts: HostFacts = readHostFacts()): Facts {
  const v = facts.values;
  return {
    virtFlags: v.cpu_virt_flag !== 'none',
    kvm: v.kvm_device ? true : (facts.why.kvm_device ?? '/dev/kvm cannot be opened'),
    memMb: v.memory_mb as number,
    cpus: v.cpus as number,
    kernel: v.kernel as string,
    arch: v.arch as string,
    os: { ...osRelease(), id: v.os_id as string, versionId: v.os_version_id as string },
    listening: listeningPorts(),
    diskFreeMb(path: string) {
      // a directory that does not exist yet will live on its nearest existing ancestor's filesystem
      let p = resolve(path);
      while (!existsSync(p) && p !== '/') p = dirname(p);
      try {
        const s = statfsSync(p);
        return Math.floor((Number(s.bavail) * Number(s.bsize)) / (1024 * 1024));
      } catch (err) {
        return `statfs ${p}: ${(err as NodeJS.ErrnoException).code}`;
      }
    },
  };
}

/** Compare dotted versions numerically: -1, 0, 1. */
export function compareVersions(a: string, b: string): number {
  const pa = (/^\d+(\.\d+)*/.exec(a)?.[0] ?? '0').split('.').map(Number);
  const pb = (/^\d+(\.\d+)*/.exec(b)?.[0] ?? '0').split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** A check set in the section's shape: a check that holds reads back as desired, a failed one as the measurement. */
export function evaluate(spec: CheckState, f: Facts): CheckState {
  const out: CheckState = {};
  if (spec.cpu_virtualization !== undefined) {
    out.cpu_virtualization = f.virtFlags || f.kvm === true ? true : `no vmx/svm flag in /proc/cpuinfo and ${f.kvm}`;
  }
  if (spec.kvm_device !== undefined) out.kvm_device = f.kvm;
  if (typeof spec.min_memory_mb === 'number')
    out.min_memory_mb = f.memMb >= spec.min_memory_mb ? spec.min_memory_mb : f.memMb;
  if (typeof spec.min_cpus === 'number') out.min_cpus = f.cpus >= spec.min_cpus ? spec.min_cpus : f.cpus;
  if (isObj(spec.min_disk_free_mb)) {
    const m: Record<string, number | string> = {};
    for (const [p, want] of Object.entries(spec.min_disk_free_mb)) {
      const free = f.diskFreeMb(p);
      m[p] = typeof free === 'number' && typeof want === 'number' && free >= want ? want : free;
    }
    out.min_disk_free_mb = m;
  }
  if (Array.isArray(spec.tcp_ports_free)) out.tcp_ports_free = spec.tcp_ports_free.filter((p) => !f.listening.has(p));
  if (typeof spec.kernel_min === 'string')
    out.kernel_min = compareVersions(f.kernel, spec.kernel_min) >= 0 ? spec.kernel_min : f.kernel;
  if (Array.isArray(spec.arch)) out.arch = spec.arch.includes(f.arch) ? spec.arch : f.arch;
  if (isObj(spec.os)) {
    const o: Obj = {};
    const w = spec.os;
    if (w.id !== undefined) {
      const ids = Array.isArray(w.id) ? w.id : [w.id];
      o.id = ids.includes(f.os.id) || ids.some((i) => f.os.idLike.includes(i)) ? w.id : f.os.id;
    }
    if (w.version_id !== undefined) o.version_id = f.os.versionId;
    if (typeof w.version_min === 'string')
      o.version_min = compareVersions(f.os.versionId, w.version_min) >= 0 ? w.version_min : f.os.versionId || '(none)';
    out.os = o;
  }
  return out;
}

/** Pure: what failed and by how much. */
export function failures(cur: CheckState, want: CheckState): string[] {
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (want.cpu_virtualization !== undefined && cur.cpu_virtualization !== true)
    out.push(
      `cpu_virtualization: ${cur.cpu_virtualization} (enable VT-x/AMD-V in the firmware, or nested virtualization on the hypervisor)`,
    );
  if (want.kvm_device !== undefined && cur.kvm_device !== true)
    out.push(`kvm_device: ${cur.kvm_device} (load kvm_intel or kvm_amd; check permissions)`);
  for (const [k, unit, what] of [
    ['min_memory_mb', 'MiB', 'memory'],
    ['min_cpus', 'CPUs', 'CPUs'],
  ] as const) {
    if (typeof want[k] === 'number' && !same(cur[k], want[k]))
      out.push(
        `${k}: the host has ${cur[k]} ${unit}${unit === what ? '' : ` of ${what}`}, needs ${want[k]} (short by ${(want[k] as number) - (cur[k] as number)} ${unit})`,
      );
  }
  if (isObj(want.min_disk_free_mb)) {
    const c = isObj(cur.min_disk_free_mb) ? cur.min_disk_free_mb : {};
    for (const [p, mb] of Object.entries(want.min_disk_free_mb)) {
      if (same(c[p], mb)) continue;
      out.push(
        typeof c[p] === 'number'
          ? `min_disk_free_mb ${p}: ${c[p]} MiB free, needs ${mb} (short by ${(mb as number) - (c[p] as number)} MiB)`
          : `min_disk_free_mb ${p}: ${c[p]}`,
      );
    }
  }
  if (Array.isArray(want.tcp_ports_free)) {
    const free = new Set(cur.tcp_ports_free ?? []);
    const busy = want.tcp_ports_free.filter((p) => !free.has(p));
    if (busy.length)
      out.push(
        `tcp_ports_free: port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} ${busy.length > 1 ? 'are' : 'is'} already listened on`,
      );
  }
  if (typeof want.kernel_min === 'string' && !same(cur.kernel_min, want.kernel_min))
    out.push(`kernel_min: the kernel is ${cur.kernel_min}, needs ${want.kernel_min} or newer`);
  if (Array.isArray(want.arch) && !same(cur.arch, want.arch))
    out.push(`arch: the host is ${cur.arch}, needs ${want.arch.join(' or ')}`);
  if (isObj(want.os)) {
    const c = cur.os ?? {};
    const w = want.os;
    if (w.id !== undefined && !same(c.id, w.id))
      out.push(`os.id: the host runs ${c.id}, needs ${Array.isArray(w.id) ? w.id.join(' or ') : w.id}`);
    if (w.version_id !== undefined && !same(c.version_id, w.version_id))
      out.push(`os.version_id: the host has ${c.version_id || '(none)'}, needs ${w.version_id}`);
    if (w.version_min !== undefined && !same(c.version_min, w.version_min))
      out.push(`os.version_min: the host has ${c.version_min}, needs ${w.version_min} or newer`);
  }
  return out;
}

/**
 * Failed checks of a section: one finding per check, naming every requirement it misses.
 * `require:` blocks the run; `recommend:` (what a guide advises rather than demands) is advisory:
 * opd diff and apply print it as a warning and go on.
 */
export function findings(current: ChecksSection, desired: ChecksSection): Finding[] {
  const out: Finding[] = [];
  for (const coll of ['require', 'recommend'] as const)
    for (const [n, want] of Object.entries(desired[coll] ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const fails = failures(current[coll]?.[n] ?? {}, want);
      if (fails.length)
        out.push({
          address: `checks/${coll}/${n}`,
          message: fails.join('; '),
          fields: Object.fromEntries(fails.map((f) => f.split(':')[0]).map((k) => [k, want[k as keyof CheckState]])),
          ...(coll === 'recommend' ? { advisory: true } : {}),
        });
    }
  return out;
}

const plugin: Plugin<ChecksSection, CheckChangeData> = {
  ...sectionSpec(manifest),

  normalize(section, ctx) {
    if (isObj(section)) normalizeCommands(section.commands, ctx);
    return section;
  },

  async read(ctx, desired) {
    const cmds = desired.commands ? await readCommands(desired.commands) : undefined;
    const withCommands = (s: ChecksSection): ChecksSection =>
      cmds
        ? {
            ...s,
            commands: cmds.commands,
            ...(Object.keys(cmds.failures).length ? { command_failures: cmds.failures } : {}),
          }
        : s;
    const sets = { require: desired.require ?? {}, recommend: desired.recommend ?? {} };
    if (!Object.keys(sets.require).length && !Object.keys(sets.recommend).length) return withCommands({ require: {} });
    const f = readFacts(ctx.facts);
    // a port held by the document's own service or database is not a conflict (converged host)
    const ports = [...Object.values(sets.require), ...Object.values(sets.recommend)].flatMap(
      (s) => s.tcp_ports_free ?? [],
    );
    if (ports.length) f.listening = foreignListening(f.listening, ports, ctx.document, ctx.settings).busy;
    const out: ChecksSection = { require: {} };
    for (const coll of ['require', 'recommend'] as const) {
      if (!desired[coll]) continue;
      const got: Record<string, Obj> = {};
      for (const [n, spec] of Object.entries(sets[coll]).sort()) if (isObj(spec)) got[n] = evaluate(spec, f);
      out[coll] = got;
    }
    return withCommands(out);
  },

  faults(current) {
    // a command check that does not hold is not converged: planned as a `check`, verified again
    return current.command_failures ?? {};
  },

  // preconditions change nothing: a failed one is a preflight finding (the core stops the run
  // before anything is applied and `opd diff` shows it as refused), never a change; a command
  // check that does not hold is run again after everything else (and fails the run if it still does not)
  plan: (d) => (d.collection === 'commands' ? planCommand(d) : []),

  apply: applyEach(async (_ctx, c) => {
    const why = await runCheck(c.data!.spec);
    if (why !== undefined)
      throw new OpdError('backend-failed', `check ${c.data!.name} does not hold: ${why}`, {
        address: c.address,
        hint: 'fix what the check looks at; the guide step it stands for did not work',
      });
  }),

  edges(desired, all) {
    return commandEdges(desired, all);
  },

  async preflight(ctx, desired) {
    return findings(await plugin.read(ctx, { require: desired.require, recommend: desired.recommend }), desired);
  },

  async doctor() {
    const f = readFacts();
    const virt = f.virtFlags || f.kvm === true;
    return [
      {
        name: 'checks: CPU virtualization',
        ok: virt,
        detail: f.virtFlags
          ? 'vmx/svm flag present'
          : f.kvm === true
            ? '/dev/kvm usable (no vmx/svm flag visible: nested or paravirtual)'
            : String(f.kvm),
        hint: virt ? undefined : 'enable VT-x/AMD-V or nested virtualization',
      },
      {
        name: 'checks: host',
        ok: true,
        detail: `${f.os.id} ${f.os.versionId}, kernel ${f.kernel}, ${f.cpus} CPUs, ${f.memMb} MiB`,
      },
    ];
  },
};

export default plugin;
