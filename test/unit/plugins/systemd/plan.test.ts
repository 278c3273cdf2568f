import { describe, expect, it } from 'vitest';
import type { Obj, ResourceDiff } from '../../../../src/core/plugin.js';
import { compare } from '../../../../src/core/diff.js';
import { planUnit } from '../../../../src/plugins/systemd/plan.js';
import { referencedPaths, unitEdges } from '../../../../src/plugins/systemd/index.js';

function diff(name: string, current: Obj | undefined, desired: Obj | undefined): ResourceDiff {
  const action = desired === undefined ? 'delete' : current === undefined ? 'create' : 'update';
  return {
    plugin: 'systemd',
    collection: 'units',
    name,
    address: `systemd/units/${name}`,
    action,
    current,
    desired,
    ops: desired === undefined ? [{ op: 'remove', path: '' }] : compare(current ?? {}, desired),
    allowDestroy: false,
  };
}

const brief = (cs: ReturnType<typeof planUnit>) =>
  cs.map((c) => [c.address.replace('systemd/units/', ''), c.action, ...(c.reason ? [c.reason] : [])]);

describe('systemd plan', () => {
  it('writes the file, enables and starts a new unit, in that order', () => {
    const cs = planUnit(diff('a.service', undefined, { unit_file: 'x\n', enabled: true, active_state: 'active' }));
    expect(brief(cs)).toEqual([
      ['a.service/unit_file', 'create'],
      ['a.service/enabled', 'enable'],
      ['a.service', 'start'],
    ]);
    expect(cs[2].after).toEqual(['systemd/units/a.service/unit_file', 'systemd/units/a.service/enabled']);
  });

  it('restarts a running unit whose unit file changed, and says why', () => {
    const cs = planUnit(
      diff('a.service', { unit_file: 'x\n', active_state: 'active' }, { unit_file: 'y\n', active_state: 'active' }),
    );
    expect(brief(cs)).toEqual([
      ['a.service/unit_file', 'update'],
      ['a.service', 'restart', 'unit file changed'],
    ]);
  });

  it('reloads instead when reload_on_change is set', () => {
    const cs = planUnit(
      diff(
        'a.service',
        { dropins: {}, active_state: 'active', reload_on_change: true },
        { dropins: { '10-x.conf': 'z' }, active_state: 'active', reload_on_change: true },
      ),
    );
    expect(brief(cs)).toEqual([
      ['a.service/dropins/10-x.conf', 'create'],
      ['a.service', 'reload-or-restart', 'drop-in 10-x.conf changed'],
    ]);
  });

  it('restarts only if running when the document does not name active_state', () => {
    const cs = planUnit(diff('a.service', { unit_file: 'x' }, { unit_file: 'y' }));
    expect(brief(cs)).toEqual([
      ['a.service/unit_file', 'update'],
      ['a.service', 'try-restart', 'unit file changed'],
    ]);
  });

  it('starts a stopped unit without restarting it', () => {
    const cs = planUnit(
      diff('a.service', { unit_file: 'x', active_state: 'inactive' }, { unit_file: 'y', active_state: 'active' }),
    );
    expect(brief(cs).map((c) => c.slice(0, 2))).toEqual([
      ['a.service/unit_file', 'update'],
      ['a.service', 'start'],
    ]);
  });

  it('stops a unit before masking it', () => {
    const cs = planUnit(
      diff('a.service', { masked: false, active_state: 'active' }, { masked: true, active_state: 'inactive' }),
    );
    expect(brief(cs)).toEqual([
      ['a.service', 'stop', 'masked'],
      ['a.service/masked', 'mask'],
    ]);
    expect(cs[1].after).toEqual(['systemd/units/a.service']);
  });

  it('unmasks before writing the unit file', () => {
    const cs = planUnit(
      diff(
        'a.service',
        { masked: true, active_state: 'inactive' },
        { masked: false, unit_file: 'x', active_state: 'active' },
      ),
    );
    expect(brief(cs).map((c) => c.slice(0, 2))).toEqual([
      ['a.service/masked', 'unmask'],
      ['a.service/unit_file', 'create'],
      ['a.service', 'start'],
    ]);
    expect(cs[1].after).toEqual(['systemd/units/a.service/masked']);
  });

  it('resets a failed unit that should be inactive', () => {
    expect(brief(planUnit(diff('a.service', { active_state: 'failed' }, { active_state: 'inactive' })))).toEqual([
      ['a.service', 'reset-failed'],
    ]);
  });

  it('stops, disables and removes the files of a unit marked absent', () => {
    const cs = planUnit(
      diff(
        'a.service',
        { active_state: 'active', enabled: true, unit_file: 'x', dropins: { '10.conf': 'y' } },
        undefined,
      ),
    );
    expect(brief(cs)).toEqual([
      ['a.service', 'stop', 'state: absent'],
      ['a.service/enabled', 'disable', 'state: absent'],
      ['a.service/unit_file', 'delete'],
      ['a.service/dropins/10.conf', 'delete'],
    ]);
  });

  it('removes a drop-in the document marks absent', () => {
    const d = diff('a.service', { dropins: { '10.conf': 'y', '20.conf': 'z' } }, { dropins: { '20.conf': 'z' } });
    expect(brief(planUnit(d))).toEqual([
      ['a.service/dropins/10.conf', 'delete'],
      ['a.service', 'try-restart', 'drop-in 10.conf changed'],
    ]);
  });

  it('restarts the running instances of a template whose file changed', () => {
    expect(brief(planUnit(diff('t@.service', { unit_file: 'x' }, { unit_file: 'y' })))).toEqual([
      ['t@.service/unit_file', 'update'],
      ['t@.service', 'restart-instances', 'unit file changed'],
    ]);
  });

  it('plans nothing when nothing differs', () => {
    expect(
      planUnit(diff('a.service', { enabled: true, active_state: 'active' }, { enabled: true, active_state: 'active' })),
    ).toEqual([]);
  });
});

describe('systemd edges', () => {
  it('finds the absolute paths a unit references', () => {
    expect(
      referencedPaths({
        unit_file: '[Service]\nExecStart=/usr/bin/h2k --config /etc/h2k/h2k.conf\nEnvironmentFile=-/etc/default/h2k\n',
        dropins: { 'a.conf': 'ExecStartPre=+/bin/true' },
      }),
    ).toEqual(['/bin/true', '/etc/default/h2k', '/etc/h2k/h2k.conf', '/usr/bin/h2k']);
  });

  it('points an instance at its template, and only at resources the document names', () => {
    const section = {
      units: {
        'h2k@.service': { unit_file: 'ExecStart=/usr/bin/h2k -c /etc/h2k.conf' },
        'h2k@vsphere.service': { active_state: 'active' },
        'openvswitch-switch.service': {},
      },
    };
    expect(unitEdges(section)).toEqual([
      { from: 'systemd/units/h2k@vsphere.service', to: 'systemd/units/h2k@.service', kind: 'template' },
    ]);
    const plugins = {
      files: { paths: { '/etc/h2k.conf': {} } },
      packages: { installed: { 'openvswitch-switch': {} } },
    };
    expect(unitEdges(section, plugins)).toEqual([
      { from: 'systemd/units/h2k@.service', to: 'files/paths//etc/h2k.conf', kind: 'references-file' },
      { from: 'systemd/units/h2k@vsphere.service', to: 'systemd/units/h2k@.service', kind: 'template' },
      {
        from: 'systemd/units/openvswitch-switch.service',
        to: 'packages/installed/openvswitch-switch',
        kind: 'shipped-by',
      },
    ]);
  });
});
