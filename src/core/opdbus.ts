/**
 * op-dbus documents as op-dbus reads them, at the level of the whole document (the plugins'
 * own op-dbus forms live in their normalize/adopt hooks):
 * - `_`-prefixed keys anywhere are comments (`_comment`, `_description`): dropped, with a note;
 * - a bare plugin body (op-dbus states/*.json: `{"interfaces": [...]}`) is wrapped when exactly
 *   one plugin has all its keys, otherwise refused with the wrapping to add;
 * - documents that are not state (workflows, MCP configuration, role masks, version 2 "system"
 *   descriptions) and op-dbus top-level sections opd has no equivalent for are refused by name;
 * - op-dbus plugins opd does not have are refused by name with what to use instead.
 * The forms a plugin stands in for (a top-level `containers`, an op-dbus `packagekit` section,
 * `systemd.services`) are the plugin's: its manifest's `opdbus` (src/plugins/<name>/manifest.ts);
 * the ones here name no plugin.
 */
import type { OpdbusSection, PluginManifest } from './manifest.js';
import type { NormalizeContext, Obj, Plugin } from './plugin.js';
import { isObj } from './diff.js';
import { pathToPointer } from './document.js';

/** op-dbus top-level keys (outside `plugins`) → what opd offers instead. */
const TOP_LEVEL: Record<string, string> = {
  workflow:
    'op-dbus workflow documents (`workflow.nodes` run plugins step by step) are not state: opd has no workflow engine; write the end state as one document {version: 1, plugins: {…}} and order resources with `depends_on`',
  mcp: 'op-dbus MCP server/agent configuration (`mcp`) is not host state: opd has no MCP server; configure the MCP server separately',
  roles: 'op-dbus role masks (`roles`) select plugins per deployment role: opd has none; write one document per role',
  mask_operations:
    'op-dbus role-mask operations (`mask_operations`) are not host state: opd has none; write one document per role',
  blockchain:
    'op-dbus `blockchain` (the event ledger) is not supported: opd keeps a hash-chained audit trail of every run (opd audit log|verify)',
  state_management:
    'op-dbus `state_management` (footprints, btrfs snapshots) is not supported: opd records every run in its audit trail; take snapshots outside opd',
  deployment:
    'op-dbus `deployment` (btrfs snapshot send/receive, per-target customization) is not supported: deploy the system image outside opd, then apply a state document on the target',
  monitoring:
    'op-dbus `monitoring` is not supported: opd daemon serves its own status (opd status) and logs to the journal',
  examples: 'op-dbus `examples` (workflow parameter sets) are not state: opd has no workflow engine',
  cache: 'op-dbus `cache` (btrfs snapshot cache) is not supported: opd keeps no cache to configure',
  deployment_targets_example: 'op-dbus workflow deployment targets are not state: opd has no workflow engine',
};

/** op-dbus plugins (sections under `plugins`) opd does not have and no plugin stands in for → why. */
const SECTIONS: Record<string, string> = {
  login1: 'op-dbus login1 is read-only introspection of logind sessions: there is nothing to apply; drop the section',
  btrfs: 'op-dbus btrfs (snapshot send/receive) is not supported: take and send snapshots outside opd',
};

/** The op-dbus forms of opd's own (above) and of every plugin's manifest (`opdbus`), as one table each. */
interface Forms {
  topLevel: Map<string, string>;
  sections: Map<string, OpdbusSection>;
  /** `plugin/key` → hint */
  keys: Map<string, string>;
}

const formsCache = new WeakMap<readonly PluginManifest[], Forms>();

function formsOf(manifests: readonly PluginManifest[]): Forms {
  const hit = formsCache.get(manifests);
  if (hit) return hit;
  const f: Forms = {
    topLevel: new Map(Object.entries(TOP_LEVEL)),
    sections: new Map(Object.entries(SECTIONS).map(([k, hint]) => [k, { hint }])),
    keys: new Map(),
  };
  for (const m of manifests) {
    for (const [k, hint] of Object.entries(m.opdbus?.topLevel ?? {})) f.topLevel.set(k, hint);
    for (const [k, v] of Object.entries(m.opdbus?.sections ?? {}))
      f.sections.set(k, typeof v === 'string' ? { hint: v } : v);
    for (const [k, hint] of Object.entries(m.opdbus?.keys ?? {})) f.keys.set(`${m.name}/${k}`, hint);
  }
  formsCache.set(manifests, f);
  return f;
}

/**
 * Settings op-dbus reads inside a plugin section (which backend/protocol to talk to, whether the
 * plugin runs): they configure op-dbus, not the host.
 */
const PLUGIN_SETTINGS = new Set([
  'enabled',
  'protocol',
  'socket',
  'bus',
  'auto_configure',
  'auto_update',
  'security_mode',
  'socket_networking',
  'controller_endpoint',
]);

const esc = (k: string) => pathToPointer([k]);

/** Drop `_`-prefixed keys everywhere (op-dbus comment keys), collecting where they were. */
/**
 * A copy of the document without op-dbus note keys (`_`-prefixed); `found` gets their pointers.
 * Every object and array is new, so that normalization may change the copy in place.
 */
function stripComments(v: unknown, path: string[], found: string[]): unknown {
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      path.push(String(i));
      out[i] = stripComments(v[i], path, found);
      path.pop();
    }
    return out;
  }
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const k of Object.keys(v)) {
    if (k.charCodeAt(0) === 95 /* _ */) {
      found.push(path.map((p) => esc(p)).join('') + esc(k));
      continue;
    }
    path.push(k);
    const x = stripComments(v[k], path, found);
    path.pop();
    if (k === '__proto__')
      Object.defineProperty(out, k, { value: x, writable: true, enumerable: true, configurable: true });
    else out[k] = x;
  }
  return out;
}

function topKeys(schema: object): string[] {
  return Object.keys((schema as { properties?: object }).properties ?? {});
}

/**
 * The document-level op-dbus forms. Returns the document to normalize further (possibly
 * wrapped). Plugin-specific forms are left to the plugins.
 */
export function opdbusDocument(
  raw: unknown,
  plugins: Map<string, Plugin>,
  ctx: NormalizeContext,
  manifests: readonly PluginManifest[],
): unknown {
  if (!isObj(raw)) return raw;
  const forms = formsOf(manifests);
  const notes: string[] = [];
  let doc = stripComments(raw, [], notes) as Obj;
  if (notes.length) {
    const names = [...new Set(notes.map((p) => p.slice(p.lastIndexOf('/') + 1)))];
    ctx.warn(
      notes[0],
      `${notes.length} op-dbus note key${notes.length === 1 ? '' : 's'} ignored (${names.join(', ')}): \`_\`-prefixed keys are comments`,
    );
  }

  // a bare `plugins` map (op-dbus docs: `{"lxc": {"containers": [...]}}`)
  const keys0 = Object.keys(doc);
  if (
    !('plugins' in doc) &&
    !('version' in doc) &&
    keys0.length &&
    keys0.every((k) => plugins.has(k) || forms.sections.has(k))
  ) {
    ctx.warn(
      '',
      `op-dbus plugin sections without the document around them: read as {"version": 1, "plugins": {${keys0.map((k) => `"${k}": …`).join(', ')}}}`,
      'wrap them so to silence this warning',
    );
    for (const k of keys0) ctx.remap(`/plugins/${esc(k).slice(1)}`, esc(k));
    doc = { version: 1, plugins: doc };
  }

  // a bare plugin body: no version, no plugins
  if (
    !('plugins' in doc) &&
    !('version' in doc) &&
    Object.keys(doc).length &&
    // an op-dbus top-level key that is also a key of a plugin's section (`containers`) may be that plugin's body
    !Object.keys(doc).some(
      (k) => forms.topLevel.has(k) && ![...plugins.values()].some((p) => topKeys(p.schema).includes(k)),
    )
  ) {
    const keys = Object.keys(doc);
    const fits = [...plugins.values()]
      .filter((p) => keys.every((k) => topKeys(p.schema).includes(k)))
      .map((p) => p.name);
    if (fits.length === 1) {
      const name = fits[0];
      ctx.warn(
        '',
        `a bare op-dbus \`${name}\` plugin body: read as {"version": 1, "plugins": {"${name}": …}}`,
        `wrap it so: {"version": 1, "plugins": {"${name}": ${JSON.stringify(doc).slice(0, 40)}…}}`,
      );
      ctx.remap(`/plugins/${name}`, '');
      doc = { version: 1, plugins: { [name]: doc } };
    } else {
      ctx.refuse(
        '',
        `a bare plugin body (keys ${keys.map((k) => `"${k}"`).join(', ')}) ${fits.length ? `fits several plugins (${fits.join(', ')})` : 'fits no plugin'}`,
        `wrap it in the plugin's section: {"version": 1, "plugins": {"<plugin>": {${keys.map((k) => `"${k}": …`).join(', ')}}}}`,
      );
      return { version: 1, plugins: {} };
    }
  }

  if (typeof doc.version === 'number' && doc.version !== 1) {
    ctx.refuse(
      '/version',
      `expected 1, got ${doc.version}${doc.version === 2 ? ': op-dbus version 2 "system state" descriptions are not state documents opd reads' : ''}`,
      'write `version: 1` (op-dbus state documents are version 1: {"version": 1, "plugins": {…}})',
    );
    doc.version = 1;
  }
  if ('metadata' in doc) {
    ctx.warn('/metadata', 'op-dbus `metadata` ignored (descriptive only)', 'put a summary in `description`');
    delete doc.metadata;
  }
  for (const k of Object.keys(doc)) {
    if (forms.topLevel.has(k)) ctx.refuse(`/${k}`, `op-dbus \`${k}\` is not supported`, forms.topLevel.get(k));
    else if (plugins.has(k) && 'plugins' in doc)
      ctx.refuse(
        `/${k}`,
        `a plugin section \`${k}\` at the top level`,
        `move it under plugins: {"plugins": {"${k}": …}}`,
      );
    else continue;
    delete doc[k];
  }
  if (!('plugins' in doc) && Object.keys(doc).every((k) => k === 'version' || k === 'description')) {
    // what remains of a non-state document: nothing to validate further
    doc.plugins = {};
  }

  if (isObj(doc.plugins)) {
    const sections = doc.plugins as Obj;
    for (const [name, body] of Object.entries(sections)) {
      if (!isObj(body)) continue;
      const own = plugins.has(name) ? topKeys(plugins.get(name)!.schema) : [];
      for (const k of Object.keys(body)) {
        if (!PLUGIN_SETTINGS.has(k) || own.includes(k)) continue;
        ctx.refuse(
          `/plugins/${esc(name).slice(1)}/${k}`,
          `op-dbus plugin setting \`${k}\` is not state`,
          `opd runs a plugin when the document names its section and picks its backend itself (its flags: opd --help); remove \`${k}\``,
        );
        delete body[k];
      }
    }
    for (const [path, why] of forms.keys) {
      const [name, key] = path.split('/');
      const body = sections[name];
      if (!isObj(body) || !(key in body) || (plugins.has(name) && topKeys(plugins.get(name)!.schema).includes(key)))
        continue;
      ctx.refuse(`/plugins/${name}/${key}`, `op-dbus \`${name}.${key}\` is not supported`, why);
      delete body[key];
    }
    for (const name of Object.keys(sections)) {
      const form = forms.sections.get(name);
      if (plugins.has(name) || !form) continue;
      if (form.adopted?.(sections[name])) continue; // read by the plugin that adopts it
      ctx.refuse(`/plugins/${esc(name).slice(1)}`, `op-dbus plugin \`${name}\` is not supported`, form.hint);
      delete sections[name];
    }
  }
  return doc;
}
