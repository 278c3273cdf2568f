/**
 * The pci plugin against a fake sysfs tree the test builds under --root: the writes opd makes
 * land in plain files (driver_override, drivers/<drv>/unbind, drivers_probe, drivers/<drv>/bind)
 * and are asserted byte for byte. No kernel acts on them, so the test plays the kernel's part
 * (it moves the `driver` symlink) before checking that a second apply has nothing to do.
 * On a real host the kernel performs the unbind/bind, vfio-pci must be loaded, and the device's
 * whole IOMMU group must be bound to vfio-pci before a VM can use it (see README, pci).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { doc as mkdoc, opd, tmp } from '../helpers/opd.js';

const work = tmp('opd-pci-');
const root = join(work, 'root');
const env = { OPD_ROOT: root, OPD_AUDIT_LOG: join(work, 'audit.jsonl') };
let docs = 0;
const doc = (text: string, name = `state-${++docs}.yaml`) => mkdoc(text, work, name);
const PCI = join(root, 'sys/bus/pci');
const GPU = '0000:01:00.0';
const AUDIO = '0000:01:00.1';

function device(addr: string, vendor: string, dev: string, driver: string | undefined) {
  const d = join(PCI, 'devices', addr);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'vendor'), `0x${vendor}\n`);
  writeFileSync(join(d, 'device'), `0x${dev}\n`);
  writeFileSync(join(d, 'driver_override'), '(null)\n');
  if (driver) bindTo(addr, driver);
}
function driverDir(name: string) {
  const d = join(PCI, 'drivers', name);
  mkdirSync(d, { recursive: true });
  for (const f of ['bind', 'unbind', 'new_id']) writeFileSync(join(d, f), '');
}
/** what the kernel does when it binds: the device's `driver` link points at the driver */
function bindTo(addr: string, driver: string) {
  const link = join(PCI, 'devices', addr, 'driver');
  if (existsSync(link)) unlinkSync(link);
  symlinkSync(`../../drivers/${driver}`, link);
}
const read = (p: string) => readFileSync(join(PCI, p), 'utf8');

driverDir('nouveau');
driverDir('snd_hda_intel');
driverDir('vfio-pci');
writeFileSync(join(PCI, 'drivers_probe'), '');
device(GPU, '10de', '1b80', 'nouveau');
device(AUDIO, '10de', '10f0', 'snd_hda_intel');

const PASSTHROUGH = `version: 1
plugins:
  pci:
    devices:
      "${GPU}":   { vendor: "10de", device: "1b80", driver_override: vfio-pci, driver: vfio-pci }
      "${AUDIO}": { vendor: "0x10DE", device: "10f0", driver: vfio-pci }
`;

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the pci plugin on a fake sysfs tree under --root', () => {
  it('plans the override and the rebinding, and diff writes nothing', async () => {
    const d = await opd(['diff', doc(PASSTHROUGH)], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toContain(
      `~ pci/devices/${GPU}: driver_override (none) → vfio-pci, unbind from nouveau, bind to vfio-pci (drivers_probe)`,
    );
    expect(d.stdout).toContain(`~ pci/devices/${AUDIO}: unbind from snd_hda_intel, bind to vfio-pci`);
    expect(read(`devices/${GPU}/driver_override`)).toBe('(null)\n');
    expect(read('drivers/nouveau/unbind')).toBe('');
  });

  it('writes driver_override, unbind and drivers_probe / bind; verification then sees the kernel has not acted', async () => {
    const r = await opd(['apply', doc(PASSTHROUGH)], { env });
    expect(read(`devices/${GPU}/driver_override`)).toBe('vfio-pci\n');
    expect(read('drivers/nouveau/unbind')).toBe(GPU);
    expect(read('drivers_probe')).toBe(GPU);
    expect(read('drivers/snd_hda_intel/unbind')).toBe(AUDIO);
    expect(read('drivers/vfio-pci/bind')).toBe(AUDIO);
    // a fake sysfs has no kernel behind it: the devices are still bound to their old drivers
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`FAILED verification of pci/devices/${GPU}`));
  });

  it('has nothing to do once the kernel has bound both devices to vfio-pci', async () => {
    bindTo(GPU, 'vfio-pci');
    bindTo(AUDIO, 'vfio-pci');
    writeFileSync(join(PCI, 'drivers_probe'), '');
    writeFileSync(join(PCI, 'drivers/vfio-pci/bind'), '');
    const r = await opd(['apply', doc(PASSTHROUGH)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('no changes: the host matches the document');
    expect(read('drivers_probe')).toBe('');
    expect(read('drivers/vfio-pci/bind')).toBe('');
  });

  it('blocks the run when the device at an address is not the one expected, and writes nothing', async () => {
    const r = await opd(
      [
        'apply',
        doc(
          `version: 1\nplugins:\n  pci:\n    devices:\n      "${GPU}": { vendor: "8086", driver_override: "" }\n      "${AUDIO}": { driver: snd_hda_intel }\n`,
        ),
      ],
      { env },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        `blocked pci/devices/${GPU}: the device at ${GPU} has vendor 10de, not 8086 \\(check the address: lspci -nn -s ${GPU}\\)`,
      ),
    );
    expect(r.stdout).toMatch(/nothing was applied/);
    expect(read(`devices/${GPU}/driver_override`)).toBe('vfio-pci\n');
    expect(read('drivers/vfio-pci/unbind')).toBe('');
  });

  it('blocks the run for an address with no device', async () => {
    const r = await opd(
      [
        'apply',
        doc(`version: 1\nplugins:\n  pci:\n    devices:\n      "0000:09:00.0": { driver_override: vfio-pci }\n`),
      ],
      { env },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'blocked pci/devices/0000:09:00.0: no PCI device at 0000:09:00.0 (/sys/bus/pci/devices/0000:09:00.0 does not exist)',
    );
  });

  it('fails a bind to a driver that is not loaded, naming the module to load', async () => {
    const r = await opd(
      ['apply', doc(`version: 1\nplugins:\n  pci:\n    devices:\n      "${AUDIO}": { driver: pci-stub }\n`)],
      { env },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/driver pci-stub is not loaded/);
    expect(read('drivers/vfio-pci/unbind')).toBe(AUDIO);
  });

  it('accepts op-dbus\'s pcidecl section and clears driver_override with ""', async () => {
    bindTo(AUDIO, 'vfio-pci');
    const json = JSON.stringify({
      version: 1,
      plugins: {
        pcidecl: {
          version: 1,
          items: [
            {
              id: 'gpu0',
              mode: 'enforce',
              address: GPU,
              expect_vendor: '10de',
              expect_device: '1b80',
              driver_override: '',
            },
          ],
        },
      },
    });
    const r = await opd(['apply', doc(json, 'opdbus.json')], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`pci/devices/${GPU}: driver_override vfio-pci → (none)`);
    expect(read(`devices/${GPU}/driver_override`)).toBe('\n');
  });

  it("refuses op-dbus's observe-only items and unknown addresses by name (exit 65)", async () => {
    const json = JSON.stringify({
      version: 1,
      plugins: {
        pcidecl: {
          version: 1,
          items: [
            { id: 'nic', mode: 'observe-only', address: '0000:00:1f.6', expect_vendor: '8086' },
            { id: 'bad', mode: 'enforce', address: '00:1f.6' },
          ],
        },
      },
    });
    const r = await opd(['validate', doc(json, 'observe.json')], { env });
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(
      /plugins\.pci\.devices\["0000:00:1f\.6"\]\.mode: expected "enforce", got "observe-only" \(fix: op-dbus's observe-only mode/,
    );
    expect(r.stderr).toMatch(/invalid name "00:1f\.6"/);
  });
});
