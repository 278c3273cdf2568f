import { describe, expect, it } from 'vitest';
import { lxcEnv, lxcPath, parseLs, stopTimeout } from '../../../../src/plugins/lxc/backend.js';

describe('lxc backend helpers', () => {
  it('parses lxc-ls --fancy output into name → state', () => {
    const out = 'NAME  STATE   \nc1    RUNNING \nweb-2 STOPPED \n';
    expect([...parseLs(out)]).toEqual([
      ['c1', 'RUNNING'],
      ['web-2', 'STOPPED'],
    ]);
    expect(parseLs('').size).toBe(0);
  });

  it('points the lxc tools at the OVS database opd uses', () => {
    expect(lxcEnv({ ovsDb: 'unix:/tmp/x/db.sock' })).toEqual({ OVS_RUNDIR: '/tmp/x' });
    expect(lxcEnv({ ovsDb: 'tcp:127.0.0.1:6640' })).toBeUndefined();
    expect(lxcEnv({})).toBeUndefined();
  });

  it('defaults the lxcpath and the stop timeout', () => {
    expect(lxcPath({})).toBe('/var/lib/lxc');
    expect(lxcPath({ lxcPath: '/srv/lxc/' })).toBe('/srv/lxc');
    expect(stopTimeout({})).toBe(30);
    expect(stopTimeout({ lxcStopTimeout: '3' })).toBe(3);
    expect(stopTimeout({ lxcStopTimeout: 'soon' })).toBe(30);
  });
});
