/**
 * Layers point one way (docs/design.md, "The layers"): cli → daemon/fleet → run
 * (orchestration: lock, audit, apply, verify, rollback) → core and audit → exec/dbus. The core
 * never imports a plugin (the registry is passed in), and no plugin imports another plugin's
 * folder (shared host helpers live in a shared module). This test reads every import under src/
 * and fails on an import the table below does not allow, and on any import cycle.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(__dirname, '../../src');

/** Each layer and the layers it may import (its own layer is always allowed). */
const ALLOWED: Record<string, string[]> = {
  core: [],
  exec: ['core'],
  dbus: ['core', 'exec'],
  ovsdb: ['core', 'exec'],
  audit: ['core', 'exec', 'dbus'],
  host: ['core', 'exec', 'dbus'], // src/host/: host helpers shared by plugins (shadow-utils, netns, IP parsing)
  plugin: ['core', 'exec', 'dbus', 'ovsdb', 'host'], // one plugin folder: never another plugin's folder
  registry: ['core', 'plugin'], // src/plugins/index.ts: the one place that names every plugin
  run: ['core', 'audit', 'exec', 'dbus'],
  daemon: ['run', 'core', 'audit', 'exec', 'dbus'],
  fleet: ['daemon', 'run', 'core', 'audit', 'exec', 'dbus'],
  cli: ['fleet', 'daemon', 'run', 'registry', 'plugin', 'host', 'core', 'audit', 'exec', 'dbus', 'ovsdb'],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The layer of a file, and for a plugin its folder. */
function layerOf(file: string): { layer: string; unit: string } {
  const parts = relative(SRC, file).split(sep);
  if (parts[0] === 'plugins')
    return parts.length === 2
      ? { layer: 'registry', unit: 'registry' }
      : { layer: 'plugin', unit: `plugins/${parts[1]}` };
  const layer = parts.length === 1 ? parts[0].replace(/\.ts$/, '') : parts[0];
  return { layer, unit: layer };
}

/** Relative imports of a file (static, re-exports, dynamic import() of a literal), resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re =
    /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|^import\s+['"](\.[^'"]+)['"]/gm;
  for (const m of text.matchAll(re))
    out.push(normalize(join(dirname(file), m[1] ?? m[2] ?? m[3])).replace(/\.js$/, '.ts'));
  return out;
}

/** Plugin → other plugin imports still allowed: none (the contract branch moved the shared host helpers to src/host and core/hostfs.ts). */
const KNOWN_PLUGIN_CROSS_IMPORTS: string[] = [];

const all = files(SRC);
const graph = new Map(all.map((f) => [f, importsOf(f)]));

/** Imports that break the layer table: "from → to". */
export function violations(g: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [from, tos] of g) {
    const a = layerOf(from);
    for (const to of tos) {
      const b = layerOf(to);
      if (a.unit === b.unit) continue;
      const ok = a.layer === b.layer ? a.layer !== 'plugin' : (ALLOWED[a.layer] ?? []).includes(b.layer);
      if (!ok) bad.push(`${relative(SRC, from)} → ${relative(SRC, to)}`);
    }
  }
  return bad.sort();
}

/** Every import cycle between files (strongly connected components of more than one file). */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(relative(SRC, w));
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('the layers of src/', () => {
  it('reads the imports of every source file', () => {
    expect(all.length).toBeGreaterThan(50);
    expect(graph.get(join(SRC, 'cli/main.ts'))!.length).toBeGreaterThan(3);
  });

  it('has no import from a lower layer to a higher one, and no plugin importing another plugin', () => {
    expect(violations(graph).filter((v) => !KNOWN_PLUGIN_CROSS_IMPORTS.includes(v))).toEqual([]);
  });

  it('keeps nothing under core, audit, exec.ts or dbus.ts importing plugins, cli, daemon, fleet or run', () => {
    const low = new Set(['core', 'audit', 'exec', 'dbus']);
    const high = new Set(['plugin', 'registry', 'cli', 'daemon', 'fleet', 'run']);
    const bad = [...graph].flatMap(([from, tos]) =>
      low.has(layerOf(from).layer)
        ? tos.filter((t) => high.has(layerOf(t).layer)).map((t) => `${relative(SRC, from)} → ${relative(SRC, t)}`)
        : [],
    );
    expect(bad).toEqual([]);
  });

  it('has no import cycle between layers', () => {
    const units = new Map<string, Set<string>>();
    for (const [from, tos] of graph) {
      const a = layerOf(from).unit;
      const set = units.get(a) ?? new Set<string>();
      for (const to of tos) if (layerOf(to).unit !== a) set.add(layerOf(to).unit);
      units.set(a, set);
    }
    const g = new Map([...units].map(([k, v]) => [k, [...v]]));
    expect(cycles(g)).toEqual([]);
  });

  it('has no import cycle between files outside the plugins', () => {
    const core = new Map([...graph].filter(([f]) => layerOf(f).layer !== 'plugin'));
    expect(cycles(core)).toEqual([]);
  });

  it('catches a core file importing the registry, a plugin importing another, and audit importing the runner', () => {
    const f = (p: string) => join(SRC, p);
    const planted = new Map([
      [f('core/engine.ts'), [f('plugins/index.ts')]],
      [f('plugins/users/index.ts'), [f('plugins/groups/index.ts'), f('core/plugin.ts')]],
      [f('audit/chain.ts'), [f('run/index.ts'), f('core/errors.ts')]],
      [f('daemon/loop.ts'), [f('cli/render.ts')]],
    ]);
    expect(violations(planted)).toEqual([
      'audit/chain.ts → run/index.ts',
      'core/engine.ts → plugins/index.ts',
      'daemon/loop.ts → cli/render.ts',
      'plugins/users/index.ts → plugins/groups/index.ts',
    ]);
  });
});
