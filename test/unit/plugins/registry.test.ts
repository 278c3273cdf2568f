/** The plugin registry loads only what a document needs. */
import { describe, expect, it } from 'vitest';
import { loadFor, pluginsFor, PLUGIN_NAMES } from '../../../src/plugins/index.js';

describe('the plugin registry', () => {
  it('names only the plugins of the sections a document has, plus those adopting from them', () => {
    expect(pluginsFor(['files'])).toEqual(['files']);
    expect(pluginsFor(['systemd', 'ovs'])).toEqual(['ovs', 'systemd']);
    // op-dbus: net.interfaces of type ovs-bridge belong to ovs
    expect(pluginsFor(['net'])).toEqual(['net', 'ovs']);
    expect(pluginsFor([])).toEqual([]);
  });

  it('ignores unknown sections, including names of Object.prototype (validation reports them)', () => {
    expect(pluginsFor(['nosuch', 'valueOf', 'constructor', '__proto__', 'files'])).toEqual(['files']);
  });

  it('loads exactly the plugins named', async () => {
    const m = await loadFor(['files', 'valueOf']);
    expect([...m.keys()]).toEqual(['files']);
    expect(m.get('files')!.name).toBe('files');
    expect(PLUGIN_NAMES).toContain('ovs');
  });
});
