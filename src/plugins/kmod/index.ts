/**
 * kmod: kernel modules. `loaded` (built-in modules and those in /sys/module count as loaded;
 * loading and unloading via modprobe), `persist` (/etc/modules-load.d/opd-<name>.conf) and
 * `options` (/etc/modprobe.d/opd-<name>.conf). Reads: /proc/modules, /sys/module,
 * modules.builtin and opd's files (node:fs, no processes). Persistence files honour --root.
 */
import { applyEach } from '../../core/plugin.js';
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import { readdirSync } from 'node:fs';
import { release } from 'node:os';
import type { ApplyContext, Change, Obj, Plugin, ReadContext, ResourceDiff } from '../../core/plugin.js';
import { assertApplyContext, resourceChange } from '../../core/plugin.js';
import type { KmodDoc, Module } from './section.gen.js';
import { OpdError } from '../../core/errors.js';
import { ExecFailure, runMutate } from '../../exec.js';
import { putFile, readText, removePath, rootOf } from '../../core/hostfs.js';
import { modulesLoadable } from '../../core/facts.js';

/** The section's types, generated from schema/kmod.schema.json (npm run gen:types). */
export type KmodSection = KmodDoc & Obj;
export type ModuleSpec = Module;

const canon = (n: string) => n.replace(/-/g, '_');
export const loadFile = (name: string) => `/etc/modules-load.d/opd-${name}.conf`;
export const optionsFile = (name: string) => `/etc/modprobe.d/opd-${name}.conf`;

interface KernelView {
  loaded: Set<string>;
  builtin: Set<string>;
  /** why this kernel cannot load modules, when it cannot */
  cannotLoad?: string;
}

function kernelView(): KernelView {
  const loaded = new Set<string>();
  const builtin = new Set<string>();
  const proc = readText('/proc/modules');
  if (proc) for (const l of proc.split('\n')) if (l) loaded.add(canon(l.split(' ')[0]));
  try {
    for (const n of readdirSync('/sys/module')) loaded.add(canon(n));
  } catch {
    /* no sysfs */
  }
  const dir = `/lib/modules/${release()}`;
  const b = readText(`${dir}/modules.builtin`);
  if (b)
    for (const l of b.split('\n'))
      if (l)
        builtin.add(
          canon(
            l
              .split('/')
              .pop()!
              .replace(/\.ko(\.\w+)?$/, ''),
          ),
        );
  // the fact source's answer (modules_loadable), asked again at apply: the kernel's, not the run's start
  const can = modulesLoadable();
  return { loaded, builtin, cannotLoad: can === true ? undefined : can };
}

function parseOptions(text: string | undefined, name: string): string | undefined {
  if (text === undefined) return undefined;
  const opts: string[] = [];
  for (const l of text.split('\n')) {
    const w = l.trim().split(/\s+/);
    if (w[0] === 'options' && canon(w[1] ?? '') === canon(name)) opts.push(...w.slice(2));
  }
  return opts.join(' ');
}

function listed(text: string | undefined, name: string): boolean {
  if (text === undefined) return false;
  return text.split('\n').some((l) => canon(l.replace(/#.*/, '').trim()) === canon(name));
}

function readKmod(ctx: ReadContext, desired: KmodSection): KmodSection {
  const root = rootOf(ctx.settings);
  const k = kernelView();
  const out: Record<string, ModuleSpec> = {};
  for (const [name, spec] of Object.entries(desired.modules ?? {})) {
    const want: ModuleSpec = spec ?? {};
    const lf = readText(root + loadFile(name));
    const of = readText(root + optionsFile(name));
    if (want.state === 'absent') {
      if (lf !== undefined || of !== undefined) out[name] = { persist: lf !== undefined };
      continue;
    }
    const cur: ModuleSpec = { loaded: k.loaded.has(canon(name)) || k.builtin.has(canon(name)) };
    cur.persist = want.persist === false ? lf !== undefined : listed(lf, name);
    const o = parseOptions(of, name);
    if (o !== undefined) cur.options = o;
    out[name] = cur;
  }
  return { modules: out };
}

interface KmodData {
  name: string;
  /** write / remove opd's files */
  persist?: boolean;
  options?: string | null;
  load?: boolean;
  persisted?: boolean;
}

export function planModule(d: ResourceDiff): Change<KmodData>[] {
  const name = d.name;
  if (d.action === 'delete') {
    const summary = `remove ${loadFile(name)} and ${optionsFile(name)} (the module stays loaded)`;
    return [resourceChange<KmodData>(d, 'delete', summary, { name, persist: false, options: null })];
  }
  const want = d.desired as ModuleSpec;
  const cur = (d.current ?? {}) as ModuleSpec;
  const out: Change<KmodData>[] = [];
  const files: KmodData = { name };
  const parts: string[] = [];
  if (want.persist !== undefined && want.persist !== cur.persist) {
    files.persist = want.persist;
    parts.push(want.persist ? `write ${loadFile(name)}` : `remove ${loadFile(name)}`);
  }
  if (want.options !== undefined && want.options !== cur.options) {
    files.options = want.options;
    parts.push(
      `options ${cur.options === undefined ? '(none)' : JSON.stringify(cur.options)} → ${JSON.stringify(want.options)}`,
    );
  }
  const filesAddr = `${d.address}/files`;
  if (parts.length)
    out.push({
      ...resourceChange(
        d,
        cur.persist === undefined && d.action === 'create' ? 'create' : 'update',
        parts.join(', '),
        files,
      ),
      address: filesAddr,
      ops: d.ops.filter((o) => o.path !== '/loaded'),
    });
  if (want.loaded !== undefined && want.loaded !== cur.loaded)
    out.push({
      ...resourceChange<KmodData>(
        d,
        want.loaded ? 'load' : 'unload',
        want.loaded ? `with modprobe ${name}` : `with modprobe -r ${name}`,
        { name, load: want.loaded, persisted: want.persist === true },
      ),
      after: parts.length ? [filesAddr] : [],
      ops: d.ops.filter((o) => o.path === '/loaded'),
    });
  return out;
}

async function applyOne(ctx: ApplyContext, c: Change<KmodData>): Promise<void> {
  assertApplyContext(ctx);
  const d = c.data!;
  if (d.persist === true)
    await putFile(ctx, loadFile(d.name), `# managed by opd (kmod/modules/${d.name})\n${d.name}\n`, {
      mode: 0o644,
    });
  if (d.persist === false) removePath(ctx, loadFile(d.name));
  if (typeof d.options === 'string')
    await putFile(
      ctx,
      optionsFile(d.name),
      `# managed by opd (kmod/modules/${d.name})\noptions ${d.name} ${d.options}\n`,
      { mode: 0o644 },
    );
  if (d.options === null) removePath(ctx, optionsFile(d.name));
  if (d.load === undefined) return;
  const k = kernelView();
  if (!d.load && k.builtin.has(canon(d.name)))
    throw new OpdError('backend-failed', `${d.name} is built into the kernel and cannot be unloaded`, {
      address: c.address,
      hint: `drop loaded: false for ${d.name}`,
    });
  const after = d.persisted
    ? 'the persistence files were written; load it after a reboot or on a host with modules'
    : 'load it on a host with modules';
  if (k.cannotLoad)
    throw new OpdError('backend-unavailable', `this kernel cannot load modules here: ${k.cannotLoad}; ${after}`, {
      address: c.address,
      hint: `modprobe ${d.name} is impossible on this host (a container or a kernel without loadable modules); set persist: true and reboot into a kernel that has ${d.name}, or drop loaded: from the document`,
    });
  try {
    await runMutate(ctx, 'modprobe', d.load ? ['--', d.name] : ['-r', '--', d.name], {
      backend: 'kmod',
      installHint: 'install kmod (it provides modprobe)',
    });
  } catch (e) {
    if (e instanceof ExecFailure) {
      const why = e.stderr.trim().split('\n').slice(-2).join(' / ') || `exit ${e.exitCode_}`;
      throw new OpdError('backend-failed', `${e.command} failed: ${why}`, {
        address: c.address,
        hint: `check that module ${d.name} exists for kernel ${release()} (modinfo ${d.name})`,
      });
    }
    if (e instanceof OpdError && e.kind === 'backend-unavailable')
      throw new OpdError('backend-unavailable', `this kernel cannot load modules here: modprobe is missing; ${after}`, {
        address: c.address,
        hint: 'install kmod',
      });
    throw e;
  }
}

const plugin: Plugin<KmodSection, KmodData> = {
  ...sectionSpec(manifest),
  async read(ctx, desired) {
    return readKmod(ctx, desired);
  },
  plan: planModule,
  apply: applyEach(applyOne),
  async show() {
    const k = kernelView();
    const modules: Record<string, ModuleSpec> = {};
    for (const n of [...k.loaded].sort()) modules[n] = { loaded: true };
    return { modules };
  },
  async doctor() {
    const k = kernelView();
    return [
      k.cannotLoad
        ? // persistence and options files still work: only `loaded: true` of a module that is not there fails
          {
            name: 'kmod',
            ok: true,
            detail: `persistence only: this kernel cannot load modules here (${k.cannotLoad}); loaded: true works for built-in and present modules`,
          }
        : { name: 'kmod', ok: true, detail: `${k.loaded.size} modules loaded, ${k.builtin.size} built in` },
    ];
  },
};

export default plugin;
