import { describe, expect, it } from 'vitest';
import { parseText } from '../../../../src/core/document.js';
import { prepareLoaded } from '../../../../src/core/engine.js';
import { registry } from '../../../../src/plugins/index.js';
import { OpdError } from '../../../../src/core/errors.js';

async function problems(units: string): Promise<string[]> {
  try {
    await prepareLoaded(registry, parseText(`version: 1\nplugins:\n  systemd:\n    units:\n${units}`, 'state.yaml'));
    return [];
  } catch (err) {
    if (!(err instanceof OpdError)) throw err;
    return err.problems.map((p) => `${p.pointer}: ${p.message}`);
  }
}

describe('systemd section schema', () => {
  it('accepts the op-dbus form units.<name>.{active_state, enabled, masked}', async () => {
    expect(
      await problems(
        '      openvswitch-switch.service: { active_state: active, enabled: true }\n      hyper2kvm@vsphere.service: { enabled: true, active_state: active }\n      cups.service: { masked: true }\n',
      ),
    ).toEqual([]);
  });

  it('accepts an op-dbus array of units', async () => {
    expect(await problems('      - { name: libvirtd.service, active_state: active, enabled: true }\n')).toEqual([]);
  });

  it('rejects unit names with a slash, .., or no suffix', async () => {
    for (const n of ['"a/b.service"', 'x..service', 'nosuffix', '"a b.service"'])
      expect((await problems(`      ${n}: {}\n`)).length, n).toBeGreaterThan(0);
  });

  it('rejects masked together with a unit file or active_state active', async () => {
    expect((await problems('      a.service: { masked: true, unit_file: "x" }\n')).join('\n')).toMatch(/unit_file/);
    expect((await problems('      a.service: { masked: true, active_state: active }\n')).join('\n')).toMatch(
      /active_state/,
    );
  });

  it('rejects active_state on a template and a drop-in name that is not a .conf file', async () => {
    expect((await problems('      t@.service: { active_state: active }\n')).length).toBeGreaterThan(0);
    expect((await problems('      a.service: { dropins: { "../x.conf": "y" } }\n')).length).toBeGreaterThan(0);
    expect((await problems('      a.service: { dropins: { "x.txt": "y" } }\n')).length).toBeGreaterThan(0);
    expect(
      await problems('      a.service: { dropins: { "10-x.conf": "y", "20-y.conf": { state: absent } } }\n'),
    ).toEqual([]);
  });
});
