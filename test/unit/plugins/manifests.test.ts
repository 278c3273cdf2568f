/**
 * A plugin's knowledge lives in its manifest (src/plugins/<name>/manifest.ts, docs/design.md):
 * the registry, the flags, the tunables, adoption, the semantic rules and the op-dbus forms are
 * derived from the manifests, so each must say the same as its plugin and stay cheap to load.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { builtinModules } from 'node:module';
import { describe, expect, it } from 'vitest';
import { settingOf, settingsOf } from '../../../src/core/manifest.js';
import { TUNABLES } from '../../../src/core/tunables.js';
import { MANIFESTS, PLUGIN_NAMES, PLUGIN_SETTINGS, PLUGIN_TUNABLES, loadAll } from '../../../src/plugins/index.js';
import { SETTING_OPTIONS } from '../../../src/cli/settings.js';

const SRC = join(__dirname, '../../../src');

/** What a file loads when imported: its static imports (not `import type`, not dynamic), resolved to .ts paths. */
function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^import\s+(?!type\s)[^'";]*?from\s*['"]([^'"]+)['"]/gm)].map((x) =>
    x[1].startsWith('.') ? normalize(join(dirname(file), x[1])).replace(/\.js$/, '.ts') : x[1],
  );
}

describe('the plugin manifests', () => {
  it('are one per plugin folder, listed by one line each in src/plugins/manifests.ts', () => {
    const folders = readdirSync(join(SRC, 'plugins'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(PLUGIN_NAMES).toEqual(folders);
    const lines = readFileSync(join(SRC, 'plugins/manifests.ts'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('export '));
    expect(lines).toEqual(folders.map((n) => `export { default as ${n} } from './${n}/manifest.js';`));
  });

  it('say the same name and collections as the plugins they load', async () => {
    const plugins = await loadAll();
    for (const m of MANIFESTS) {
      const p = plugins.get(m.name)!;
      expect(p.name, m.name).toBe(m.name);
      expect([...p.collections], m.name).toEqual([...m.collections]);
      expect(typeof p.adopt === 'function', `${m.name}: adopt() and adoptsFrom go together`).toBe(
        (m.adoptsFrom ?? []).length > 0,
      );
    }
  });

  it('import nothing of a backend: only node built-ins, types, core contract files, shared setting specs and their own rules', () => {
    const allowed = new Set(
      [
        'core/manifest.ts',
        'core/semantic.ts',
        'core/diff.ts',
        'core/document.ts',
        'core/errors.ts',
        'host/settings.ts',
      ].map((f) => join(SRC, f)),
    );
    const builtins = new Set([...builtinModules, ...builtinModules.map((b) => `node:${b}`)]);
    for (const m of PLUGIN_NAMES) {
      const file = join(SRC, 'plugins', m, 'manifest.ts');
      const rules = join(SRC, 'plugins', m, 'rules.ts');
      const mine = importsOf(file);
      const loaded = [...mine, ...(mine.includes(rules) ? importsOf(rules) : [])];
      const bad = loaded.filter((f) => !builtins.has(f) && !allowed.has(f) && f !== rules);
      expect(
        bad.map((f) => (f.startsWith(SRC) ? relative(SRC, f) : f)),
        `${m}/manifest.ts loads only what it needs`,
      ).toEqual([]);
    }
  });

  it('give every setting one spec: its key is what commander makes of its flag, its variable is OPD_…', () => {
    expect(() => settingsOf(MANIFESTS)).not.toThrow();
    for (const s of PLUGIN_SETTINGS) {
      expect(s.env, s.key).toMatch(/^OPD_[A-Z_]+$/);
      if (s.flag) {
        const camel = s.flag
          .split(' ')[0]
          .slice(2)
          .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        expect(s.key).toBe(camel);
        expect(SETTING_OPTIONS).toContain(s);
      }
    }
    const ovsDb = PLUGIN_SETTINGS.find((s) => s.key === 'ovsDb')!;
    expect(MANIFESTS.filter((m) => m.settings?.includes(ovsDb)).map((m) => m.name)).toEqual(['lxc', 'openflow', 'ovs']);
  });

  it('refuses two different specs of one setting', () => {
    const a = { key: 'x', flag: '--x <v>', env: 'OPD_X', type: 'string', help: 'x' } as const;
    const load = () => Promise.reject(new Error('not loaded'));
    expect(() =>
      settingsOf([
        { name: 'p', collections: [], settings: [a], load },
        { name: 'q', collections: [], settings: [{ ...a, default: '1' }], load },
      ]),
    ).toThrow(/plugin q declares setting key x, which p declares differently/);
  });

  it('read a setting from Settings, then its variable, then its default (written once, in the spec)', () => {
    const spec = { key: 'demo', env: 'OPD_H28_DEMO', type: 'string', default: 'd', help: 'demo' } as const;
    expect(settingOf({}, spec)).toBe('d');
    process.env.OPD_H28_DEMO = 'e';
    try {
      expect(settingOf({}, spec)).toBe('e');
      expect(settingOf({ demo: 's' }, spec)).toBe('s');
    } finally {
      delete process.env.OPD_H28_DEMO;
    }
  });

  it("keep each tunable one plugin's, none of them the core's", () => {
    const names = MANIFESTS.flatMap((m) => Object.keys(m.tunables ?? {}));
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => n in TUNABLES)).toEqual([]);
    expect(Object.keys(PLUGIN_TUNABLES).sort()).toEqual([...names].sort());
    expect(PLUGIN_TUNABLES.lxcCreateMs).toBe(900_000);
  });

  it('give each op-dbus form to one plugin at most', () => {
    for (const kind of ['topLevel', 'sections'] as const) {
      const keys = MANIFESTS.flatMap((m) => Object.keys(m.opdbus?.[kind] ?? {}));
      expect(new Set(keys).size, kind).toBe(keys.length);
    }
  });
});
