/**
 * No plugin name in the core (docs/design.md, "The plugin manifest"): what a plugin is lives in
 * its folder, and src/core, src/run, src/daemon and src/cli know plugins only through the
 * registry that the caller passes in (src/plugins/index.ts, src/plugins/manifests.ts). This test
 * reads the code of those folders (comments are not code: they may name a plugin as an example)
 * and fails on
 * - a string whose value is a plugin's name or one of its addresses (`'ovs'`, `'ovs/bridges'`);
 * - a plugin's section reached by name (`doc.plugins.ovs`, `plugins['ovs']`, also inside a text);
 * - anything a plugin's manifest declares: a setting's key, flag or variable (`ovsDb`,
 *   `--ovs-db`, `OPD_OVS_DB`) or a tunable's name (`lxcCreateMs`).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { MANIFESTS, PLUGIN_NAMES } from '../../src/plugins/index.js';

const SRC = join(__dirname, '../../src');
const CORE_DIRS = ['core', 'run', 'daemon', 'cli'];
/** Files of those folders allowed to name plugins: none (the registry is src/plugins/index.ts and manifests.ts). */
const ALLOWED: string[] = [];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const names = new Set(PLUGIN_NAMES);
/** Words a manifest declares (settings, tunables) with the plugin that declares them. */
const declared = new Map<string, string>();
for (const m of MANIFESTS) {
  for (const s of m.settings ?? []) {
    declared.set(s.key, m.name);
    declared.set(s.env, m.name);
    if (s.flag) declared.set(s.flag.split(' ')[0], m.name);
  }
  for (const t of Object.keys(m.tunables ?? {})) declared.set(t, m.name);
}
const sectionRef = new RegExp(`plugins(?:\\??\\.|\\[['"\`])(${PLUGIN_NAMES.join('|')})\\b`);
const words = (text: string) => text.match(/--[a-z][a-z-]*|[A-Za-z_][A-Za-z0-9_]*/g) ?? [];

/** What names a plugin in one source text: `line: what`. */
export function pluginNamesIn(text: string, file = 'x.ts'): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const at = (n: ts.Node, what: string) =>
    out.push(`${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}: ${what}`);
  const visit = (n: ts.Node) => {
    if (ts.isStringLiteralLike(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n)) {
      const v = n.text;
      const head = v.split('/')[0];
      if (names.has(v) || (v.includes('/') && names.has(head))) at(n, `the plugin name ${JSON.stringify(v)}`);
      const ref = sectionRef.exec(v);
      if (ref) at(n, `the section ${ref[0]}`);
      for (const w of words(v)) if (declared.has(w)) at(n, `${w}, declared by ${declared.get(w)}'s manifest`);
    } else if (ts.isIdentifier(n) || ts.isPrivateIdentifier(n)) {
      if (declared.has(n.text)) at(n, `${n.text}, declared by ${declared.get(n.text)}'s manifest`);
    } else if (ts.isPropertyAccessExpression(n) || ts.isElementAccessExpression(n)) {
      const ref = sectionRef.exec(n.getText(sf).replace(/\s+/g, ''));
      if (ref && ts.isPropertyAccessExpression(n) && names.has(n.name.text)) at(n, `the section ${ref[0]}`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

describe('the core', () => {
  it('finds plugin names where they hide (a test of the search itself)', () => {
    expect(pluginNamesIn('const b = doc.plugins.ovs?.bridges; // ovs is fine in a comment\n')).toEqual([
      '1: the section plugins.ovs',
    ]);
    expect(pluginNamesIn("ptr('libvirt', 'networks');\nconst a = `sysctl/keys/${k}`;\n")).toEqual([
      '1: the plugin name "libvirt"',
      '2: the plugin name "sysctl/keys/"',
    ]);
    expect(pluginNamesIn("const d = settings.ovsDb ?? process.env.OPD_OVS_DB;\nhint('give --lxc-path');\n")).toEqual([
      "1: ovsDb, declared by ovs's manifest",
      "1: OPD_OVS_DB, declared by ovs's manifest",
      "2: --lxc-path, declared by lxc's manifest",
    ]);
    expect(pluginNamesIn("const t = TUNABLES.lxcCreateMs;\nconst h = 'use plugins.files.paths';\n")).toEqual([
      "1: lxcCreateMs, declared by lxc's manifest",
      '2: the section plugins.files',
    ]);
    // words of prose are not names: "files", "exec", "systemd" as words
    expect(pluginNamesIn("const h = 'write the files; run systemd-notify; exec the program';\n")).toEqual([]);
  });

  it('names no plugin in src/core, src/run, src/daemon or src/cli', () => {
    const found = CORE_DIRS.flatMap((d) => files(join(SRC, d)))
      .filter((f) => !ALLOWED.includes(relative(SRC, f)))
      .flatMap((f) => pluginNamesIn(readFileSync(f, 'utf8'), f).map((w) => `${relative(SRC, f)}:${w}`));
    expect(found).toEqual([]);
  });
});
