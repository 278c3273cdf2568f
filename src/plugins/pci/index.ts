/**
 * pci: PCI devices through sysfs (op-dbus's pcidecl): the expected vendor/device ids at an
 * address, driver_override, and the driver the device is bound to (vfio-pci for passthrough).
 * Everything is node:fs on /sys/bus/pci under --root: reads are a few small files and a
 * readlink per device, writes go to driver_override, drivers/<drv>/unbind, drivers/<drv>/bind
 * and drivers_probe. The kernel does the binding; opd verifies it by reading again.
 */
import { adoptRenamed, itemsToCollection, mapEntries } from '../../core/shorthand.js';
import { applyEach } from '../../core/plugin.js';
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import { lstatSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import type { ApplyContext, Change, NormalizeContext, Obj, Plugin, ResourceDiff } from '../../core/plugin.js';
import { assertApplyContext } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { readText, rootOf, writeKernelFile } from '../../core/hostfs.js';
import type { PciDoc, Device } from './section.gen.js';

/** The section's types, generated from schema/pci.schema.json (npm run gen:types). */
export type PciSection = PciDoc & Obj;
export type DeviceSpec = Device;

export const SYSFS_PCI = '/sys/bus/pci';
export const devDir = (addr: string) => `${SYSFS_PCI}/devices/${addr}`;

/** "0x10DE" / "10de" → "10de" */
export const hexId = (v: string) => v.trim().toLowerCase().replace(/^0x/, '');

function readDevice(root: string, addr: string): DeviceSpec | undefined {
  const dir = root + devDir(addr);
  try {
    lstatSync(dir);
  } catch {
    return undefined;
  }
  const out: DeviceSpec = {};
  const vendor = readText(`${dir}/vendor`);
  const device = readText(`${dir}/device`);
  if (vendor !== undefined) out.vendor = hexId(vendor);
  if (device !== undefined) out.device = hexId(device);
  const ovr = readText(`${dir}/driver_override`);
  if (ovr !== undefined) out.driver_override = ovr.trim() === '(null)' ? '' : ovr.trim();
  try {
    out.driver = basename(readlinkSync(`${dir}/driver`));
  } catch {
    out.driver = 'none';
  }
  return out;
}

/** One sysfs write: `value` into `path` (relative to the root). */
interface Write {
  path: string;
  value: string;
}
interface PciData {
  writes: Write[];
}

export function planDevice(d: ResourceDiff): Change<PciData>[] {
  const addr = d.name;
  const base = { address: d.address, resource: d.address, plugin: d.plugin, ops: d.ops };
  if (!d.current)
    return [
      {
        ...base,
        action: 'check',
        summary: `device ${addr} is not present`,
        blocker: `no PCI device at ${addr} (${devDir(addr)} does not exist)`,
        data: { writes: [] },
      },
    ];
  const want = (d.desired ?? {}) as DeviceSpec;
  const cur = d.current as DeviceSpec;
  const wrong = (['vendor', 'device'] as const).filter((k) => want[k] !== undefined && hexId(want[k]!) !== cur[k]);
  if (wrong.length)
    return [
      {
        ...base,
        action: 'check',
        summary: wrong.map((k) => `${k} ${cur[k] ?? '(unknown)'}, expected ${hexId(want[k]!)}`).join('; '),
        blocker: `the device at ${addr} has ${wrong.map((k) => `${k} ${cur[k] ?? '(unknown)'}, not ${hexId(want[k]!)}`).join(' and ')} (check the address: lspci -nn -s ${addr})`,
        data: { writes: [] },
      },
    ];
  const writes: Write[] = [];
  const parts: string[] = [];
  const override = want.driver_override ?? cur.driver_override ?? '';
  if (want.driver_override !== undefined && want.driver_override !== cur.driver_override) {
    writes.push({ path: `${devDir(addr)}/driver_override`, value: want.driver_override + '\n' });
    parts.push(`driver_override ${cur.driver_override || '(none)'} → ${want.driver_override || '(none)'}`);
  }
  if (want.driver !== undefined && want.driver !== cur.driver) {
    if (cur.driver && cur.driver !== 'none') {
      writes.push({ path: `${SYSFS_PCI}/drivers/${cur.driver}/unbind`, value: addr });
      parts.push(`unbind from ${cur.driver}`);
    }
    if (want.driver !== 'none') {
      // with driver_override naming the driver the kernel's probe picks it (and no other)
      if (override === want.driver) writes.push({ path: `${SYSFS_PCI}/drivers_probe`, value: addr });
      else writes.push({ path: `${SYSFS_PCI}/drivers/${want.driver}/bind`, value: addr });
      parts.push(`bind to ${want.driver}${override === want.driver ? ' (drivers_probe)' : ''}`);
    }
  }
  if (!writes.length) return [];
  return [{ ...base, action: 'update', summary: parts.join(', '), data: { writes } satisfies PciData }];
}

function applyOne(ctx: ApplyContext, c: Change<PciData>): void {
  assertApplyContext(ctx);
  const root = rootOf(ctx.settings);
  for (const w of c.data!.writes) {
    try {
      writeKernelFile(ctx, w.path, w.value);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = (e as Error).message;
      if (code === 'ENOENT' && /\/drivers\/[^/]+\/bind$/.test(w.path))
        throw new OpdError(
          'backend-failed',
          `driver ${w.path.split('/').at(-2)} is not loaded (${root + w.path} does not exist)`,
          { address: c.address, hint: 'load the module first (kmod plugin: vfio-pci loaded: true), then apply again' },
        );
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
        throw new OpdError('permission', `cannot write ${root + w.path}: ${why}`, {
          address: c.address,
          hint: 'run opd as root on a host whose /sys is writable',
        });
      throw new OpdError(
        'backend-failed',
        `writing ${JSON.stringify(w.value.trim())} to ${root + w.path} failed: ${why}`,
        {
          address: c.address,
          hint: 'check dmesg: the kernel refuses a bind when the driver does not support the device or its IOMMU group is in use',
        },
      );
    }
  }
}

/** op-dbus's section name `pcidecl` → `pci`. */
function adoptOpdbus(plugins: Record<string, unknown>, ctx: NormalizeContext): void {
  adoptRenamed(plugins, 'pcidecl', 'pci', ctx);
}

/** op-dbus's form `{version, items: [{id, mode, address, expect_vendor, expect_device, driver_override}]}` → `devices`. */
function fromItems(section: Obj, ctx: NormalizeContext): Obj {
  return itemsToCollection(section, 'pci', 'devices', ctx, (it, i) => {
    const key = isObj(it) && typeof it.address === 'string' ? it.address : `item${i}`;
    const out: Obj = {};
    if (isObj(it)) {
      for (const [k, v] of Object.entries(it)) {
        if (k === 'id' || k === 'address') continue; // id: op-dbus's inventory label; address: the key
        if (k === 'mode' && v === 'enforce') continue;
        const to = k === 'expect_vendor' ? 'vendor' : k === 'expect_device' ? 'device' : k;
        out[to] = v;
        ctx.remap(`/plugins/pci/devices/${key}/${to}`, `/plugins/pci/items/${i}/${k}`);
      }
    }
    return [key, out];
  });
}

const plugin: Plugin<PciSection, PciData> = {
  ...sectionSpec(manifest),
  adopt: adoptOpdbus,
  normalize(raw, ctx) {
    if (!isObj(raw)) return raw;
    const section = fromItems(raw, ctx);
    if (!isObj(section.devices)) return section;
    const devices = mapEntries(section.devices, (s) => {
      const o: Obj = { ...s };
      for (const k of ['vendor', 'device']) {
        const v = o[k];
        if (typeof v === 'string' && /^(0x)?[0-9a-fA-F]{4}$/.test(v)) o[k] = hexId(v);
      }
      return o;
    });
    return { ...section, devices };
  },
  async read(ctx, desired) {
    const root = rootOf(ctx.settings);
    const devices: Record<string, DeviceSpec> = {};
    for (const addr of Object.keys(desired.devices ?? {})) {
      const d = readDevice(root, addr);
      if (d) devices[addr] = d;
    }
    return { devices };
  },
  plan: planDevice,
  apply: applyEach(applyOne),
  edges(desired, all) {
    // binding to a driver needs its module (kmod/modules/<driver>, e.g. vfio_pci)
    const mods = isObj(all.kmod) && isObj(all.kmod.modules) ? all.kmod.modules : {};
    const out = [];
    for (const [addr, spec] of Object.entries(desired.devices ?? {})) {
      const drv = typeof spec.driver === 'string' ? spec.driver : undefined;
      if (!drv) continue;
      for (const m of [drv, drv.replace(/-/g, '_')])
        if (m in mods)
          out.push({ from: `pci/devices/${addr}`, to: `kmod/modules/${m}`, kind: 'driver-module', exact: true });
    }
    return out;
  },
};

export default plugin;
