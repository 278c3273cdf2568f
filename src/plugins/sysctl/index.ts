/**
 * sysctl: kernel parameters at runtime (/proc/sys, written directly: no processes) and
 * persisted in /etc/sysctl.d/90-opd-<key>.conf (honours --root). net.* keys belong to the
 * network namespace opd runs in (`ip netns exec NS opd apply …`).
 */
import { liftShorthand } from '../../core/shorthand.js';
import { applyEach } from '../../core/plugin.js';
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import { readFileSync } from 'node:fs';
import type { ApplyContext, Change, Obj, Plugin, ReadContext, ResourceDiff } from '../../core/plugin.js';
import { assertApplyContext, resourceChange } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import type { SysctlDoc, Param } from './section.gen.js';
import { putFile, readText, removePath, rootOf, writeKernelFile } from '../../core/hostfs.js';

/** The section's types, generated from schema/sysctl.schema.json (npm run gen:types). Values are strings after normalize. */
export type SysctlSection = SysctlDoc & Obj;
export type ParamSpec = Param;

export const procPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;
export const persistFile = (key: string) => `/etc/sysctl.d/90-opd-${key}.conf`;
export const normValue = (v: unknown) => String(v).trim().split(/\s+/).join(' ');
const line = (key: string, value: string) => `${key} = ${value}`;

function persisted(text: string | undefined, key: string): string | undefined {
  if (text === undefined) return undefined;
  for (const l of text.split('\n')) {
    const m = /^\s*-?([^=#;\s]+)\s*=\s*(.*?)\s*$/.exec(l);
    if (m && m[1].replace(/\//g, '.') === key) return normValue(m[2]);
  }
  return undefined;
}

function readSysctl(ctx: ReadContext, desired: SysctlSection): SysctlSection {
  const root = rootOf(ctx.settings);
  const out: Record<string, ParamSpec> = {};
  for (const [key, spec] of Object.entries(desired.keys ?? {})) {
    const want: ParamSpec = spec ?? {};
    const file = readText(root + persistFile(key));
    if (want.state === 'absent') {
      if (file !== undefined) out[key] = { persist: true };
      continue;
    }
    let runtime: string | undefined;
    try {
      runtime = normValue(readFileSync(procPath(key), 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EACCES') throw e;
    }
    if (runtime === undefined && file === undefined) continue;
    const cur: ParamSpec = {};
    if (runtime !== undefined) cur.value = runtime;
    if (want.persist === false) cur.persist = file !== undefined;
    else cur.persist = want.value !== undefined && persisted(file, key) === normValue(want.value);
    out[key] = cur;
  }
  return { keys: out };
}

interface SysctlData {
  key: string;
  value?: string;
  persist?: boolean;
  /** the value written to the persistence file */
  persistValue?: string;
}

export function planParam(d: ResourceDiff): Change<SysctlData>[] {
  const key = d.name;
  if (d.action === 'delete')
    return [
      resourceChange<SysctlData>(d, 'delete', `remove ${persistFile(key)} (the runtime value stays)`, {
        key,
        persist: false,
      }),
    ];
  const want = d.desired as ParamSpec;
  const cur = (d.current ?? {}) as ParamSpec;
  const parts: string[] = [];
  const data: SysctlData = { key };
  if (want.value !== undefined && want.value !== cur.value) {
    data.value = String(want.value); // a string after normalize
    parts.push(`${cur.value === undefined ? '(unknown)' : JSON.stringify(cur.value)} → ${JSON.stringify(want.value)}`);
  }
  if (want.persist !== undefined && want.persist !== (cur.persist ?? false)) {
    data.persist = want.persist;
    parts.push(want.persist ? `persist in ${persistFile(key)}` : `remove ${persistFile(key)}`);
  }
  if (!parts.length) return [];
  const persistValue = want.value === undefined ? undefined : String(want.value);
  return [
    resourceChange(d, d.action === 'create' ? 'create' : 'update', parts.join(', '), {
      ...data,
      ...(want.persist ? { value: data.value, persistValue } : {}),
    }),
  ];
}

async function applyOne(ctx: ApplyContext, c: Change<SysctlData>): Promise<void> {
  assertApplyContext(ctx);
  const d = c.data!;
  // the runtime value first: a key the kernel rejects gets no persistence file
  if (d.value !== undefined) {
    try {
      writeKernelFile(ctx, procPath(d.key), d.value + '\n');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        throw new OpdError('backend-failed', `unknown sysctl ${d.key} (${procPath(d.key)} does not exist)`, {
          address: c.address,
          hint: 'check the name (sysctl -a lists them); some keys need a kernel module or belong to a network namespace',
        });
      if (code === 'EINVAL')
        throw new OpdError('backend-failed', `the kernel rejected ${d.key} = ${d.value} (invalid value)`, {
          address: c.address,
          hint: 'use a value the kernel accepts for this key (see the kernel documentation of sysctl)',
        });
      if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM')
        throw new OpdError('permission', `cannot write ${procPath(d.key)}: ${(e as Error).message}`, {
          address: c.address,
          hint: 'run opd as root, outside a read-only /proc/sys',
        });
      throw e;
    }
  }
  if (d.persist === true && d.persistValue !== undefined)
    await putFile(
      ctx,
      persistFile(d.key),
      `# managed by opd (sysctl/keys/${d.key})\n${line(d.key, d.persistValue)}\n`,
      { mode: 0o644 },
    );
  if (d.persist === false) removePath(ctx, persistFile(d.key));
}

const plugin: Plugin<SysctlSection, SysctlData> = {
  ...sectionSpec(manifest),
  normalize(section, ctx) {
    if (!isObj(section)) return section;
    // shorthand: sysctl: { net.ipv4.ip_forward: 1 }
    const {
      out,
      entries: keys,
      lifted: moved,
    } = liftShorthand(section, 'sysctl', 'keys', ctx, (k, v) =>
      k.includes('.') ? (isObj(v) ? v : { value: v }) : undefined,
    );
    for (const [k, v] of Object.entries(keys)) {
      if (!isObj(v)) continue;
      const s: Obj = { ...v };
      if (typeof s.value === 'number' || typeof s.value === 'string') s.value = normValue(s.value);
      if (s.persist === undefined && s.state !== 'absent') s.persist = true;
      keys[k] = s;
    }
    if (moved || isObj(section.keys)) out.keys = keys;
    return out;
  },
  async read(ctx, desired) {
    return readSysctl(ctx, desired);
  },
  plan: planParam,
  apply: applyEach(applyOne),
};

export default plugin;
