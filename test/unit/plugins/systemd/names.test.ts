import { describe, expect, it } from 'vitest';
import {
  exactPattern,
  isInstance,
  isTemplate,
  isValidUnitName,
  templateOf,
  unitObjectPath,
  enabledOf,
  maskedOf,
} from '../../../../src/plugins/systemd/names.js';

describe('systemd unit names', () => {
  it('accepts services, sockets, timers, targets, paths and template instances', () => {
    for (const n of [
      'nginx.service',
      'libvirtd.socket',
      'fstrim.timer',
      'multi-user.target',
      'foo.path',
      'hyper2kvm@vsphere.service',
      'getty@.service',
      'dev-disk-by\\x2dlabel-x.swap',
      'a:b_c.service',
    ])
      expect(isValidUnitName(n), n).toBe(true);
  });

  it('rejects slashes, .., two suffixes, two @ and unknown suffixes', () => {
    for (const n of [
      'a/b.service',
      '../x.service',
      'x..service',
      '.service',
      'a@b@c.service',
      'x.device',
      'x.service.service.exe',
      'x',
      'x y.service',
      'x;rm.service',
      'a'.repeat(250) + '.service',
    ])
      expect(isValidUnitName(n), n).toBe(false);
  });

  it('tells templates from instances and finds the template of an instance', () => {
    expect(isTemplate('getty@.service')).toBe(true);
    expect(isInstance('getty@tty1.service')).toBe(true);
    expect(isInstance('getty@.service')).toBe(false);
    expect(templateOf('hyper2kvm@vsphere.service')).toBe('hyper2kvm@.service');
    expect(templateOf('plain.service')).toBeUndefined();
  });

  it('escapes object paths the way sd-bus does', () => {
    expect(unitObjectPath('dbus.service')).toBe('/org/freedesktop/systemd1/unit/dbus_2eservice');
    expect(unitObjectPath('nope-x.service')).toBe('/org/freedesktop/systemd1/unit/nope_2dx_2eservice');
    expect(unitObjectPath('1a_b.service')).toBe('/org/freedesktop/systemd1/unit/_31a_5fb_2eservice');
  });

  it('escapes backslashes for fnmatch patterns', () => {
    expect(exactPattern('a\\x2db.swap')).toBe('a\\\\x2db.swap');
  });

  it('reads unit-file states as systemctl is-enabled does, except that static units are not enabled', () => {
    expect(enabledOf('enabled')).toBe(true);
    expect(enabledOf('alias')).toBe(true);
    expect(enabledOf('static')).toBe(false);
    expect(enabledOf('disabled')).toBe(false);
    expect(enabledOf('masked')).toBe(false);
    expect(maskedOf('masked-runtime')).toBe(true);
  });
});
