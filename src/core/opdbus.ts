/**
 * op-dbus documents as op-dbus reads them, at the level of the whole document (the plugins'
 * own op-dbus forms live in their normalize/adopt hooks):
 * - `_`-prefixed keys anywhere are comments (`_comment`, `_description`): dropped, with a note;
 * - a bare plugin body (op-dbus states/*.json: `{"interfaces": [...]}`) is wrapped when exactly
 *   one plugin has all its keys, otherwise refused with the wrapping to add;
 * - documents that are not state (workflows, MCP configuration, role masks, version 2 "system"
 *   descriptions) and op-dbus top-level sections opd has no equivalent for are refused by name;
 * - op-dbus plugins opd does not have are refused by name with what to use instead.
 */
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
  bootstrap:
    'op-dbus `bootstrap` (hostname, domain, timezone, debian_version) is not supported: manage /etc/hostname and /etc/timezone with the files plugin',
  system:
    'op-dbus `system` (hostname, timezone, locale) is not supported: manage /etc/hostname, /etc/timezone and /etc/default/locale with the files plugin',
  packages:
    'op-dbus top-level `packages` (required/optional lists) is not a state section: list them under plugins.packages.installed',
  network:
    'op-dbus top-level `network` is not a state section: put interfaces under plugins.net.interfaces and Open vSwitch bridges under plugins.ovs.bridges',
  containers: 'op-dbus top-level `containers` is not a state section: put containers under plugins.lxc.containers',
  openflow: 'op-dbus top-level `openflow` is not a state section: put flows under plugins.openflow',
  blockchain:
    'op-dbus `blockchain` (the event ledger) is not supported: opd keeps a hash-chained audit trail of every run (opd audit log|verify)',
  state_management:
    'op-dbus `state_management` (footprints, btrfs snapshots) is not supported: opd records every run in its audit trail; take snapshots outside opd',
  security: 'op-dbus top-level `security` is not a state section: use plugins.firewall for nftables rules',
  deployment:
    'op-dbus `deployment` (btrfs snapshot send/receive, per-target customization) is not supported: deploy the system image outside opd, then apply a state document on the target',
  monitoring:
    'op-dbus `monitoring` is not supported: opd daemon serves its own status (opd status) and logs to the journal',
  examples: 'op-dbus `examples` (workflow parameter sets) are not state: opd has no workflow engine',
  cache: 'op-dbus `cache` (btrfs snapshot cache) is not supported: opd keeps no cache to configure',
  deployment_targets_example: 'op-dbus workflow deployment targets are not state: opd has no workflow engine',
};

/** op-dbus plugins (sections under `plugins`) opd does not have → what to use instead. */
const PLUGINS: Record<string, string> = {
  packagekit: 'use plugins.packages.installed (op-dbus `packagekit.packages.<name>.ensure` is read as that)',
  network:
    'op-dbus `network` plugin form (bridges with bridge_ports/internal_ports/address, ovsdb settings) is not supported: use plugins.net.interfaces (addresses) and plugins.ovs.bridges (Open vSwitch)',
  sessdecl:
    'op-dbus sessdecl (declared login sessions) is not supported: sessions are made by logging in; manage users with plugins.users',
  login1: 'op-dbus login1 is read-only introspection of logind sessions: there is nothing to apply; drop the section',
  keyring:
    'op-dbus keyring (secret-service entries) is not supported: keep secrets in files managed by plugins.files (mode 0600) or in the secrets store opd reads',
  netmaker:
    'op-dbus netmaker (mesh enrollment with netclient) is not supported: install netclient with plugins.packages and join the mesh outside opd; put the mesh interface on an OVS bridge with plugins.ovs',
  privacy:
    'op-dbus privacy router (WireGuard/WARP/XRay chain) is not supported: build it from plugins.lxc containers, plugins.ovs bridges and plugins.firewall rules',
  privacy_router:
    'op-dbus privacy router (WireGuard/WARP/XRay chain) is not supported: build it from plugins.lxc containers, plugins.ovs bridges and plugins.firewall rules',
  btrfs: 'op-dbus btrfs (snapshot send/receive) is not supported: take and send snapshots outside opd',
  file: 'op-dbus `file` is spelled `files` in opd: plugins.files.paths.<path>',
  network_manager: 'op-dbus NetworkManager plugin is not supported: use plugins.net',
};

/** Forms of op-dbus's installer manifests (examples/complete-proxmox-*.json) → what opd has instead. */
const MANIFEST_KEYS: Record<string, string> = {
  'systemd/services':
    'write systemd.units with full unit names: {"units": {"pveproxy.service": {"enabled": true, "active_state": "active"}}}',
  'users/accounts': 'write users.users: {"users": {"admin": {"uid": 1000, "groups": ["sudo"], "shell": "/bin/bash"}}}',
  'firewall/rules':
    'write nftables rules under firewall.tables (see schema/firewall.schema.json); an accept rule per port goes into an input chain',
  'firewall/default_policy': 'give the chains of firewall.tables their policy (input: drop)',
};

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
export function opdbusDocument(raw: unknown, plugins: Map<string, Plugin>, ctx: NormalizeContext): unknown {
  if (!isObj(raw)) return raw;
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
    keys0.every((k) => plugins.has(k) || k in PLUGINS)
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
    !Object.keys(doc).some((k) => k in TOP_LEVEL && k !== 'containers')
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
    if (k in TOP_LEVEL) ctx.refuse(`/${k}`, `op-dbus \`${k}\` is not supported`, TOP_LEVEL[k]);
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
          `opd runs a plugin when the document names its section and picks its backend itself (flags such as --ovs-db, --lxc-path); remove \`${k}\``,
        );
        delete body[k];
      }
    }
    for (const [path, why] of Object.entries(MANIFEST_KEYS)) {
      const [name, key] = path.split('/');
      const body = sections[name];
      if (!isObj(body) || !(key in body) || (plugins.has(name) && topKeys(plugins.get(name)!.schema).includes(key)))
        continue;
      ctx.refuse(`/plugins/${name}/${key}`, `op-dbus \`${name}.${key}\` is not supported`, why);
      delete body[key];
    }
    for (const name of Object.keys(sections)) {
      if (plugins.has(name) || !(name in PLUGINS)) continue;
      if (name === 'packagekit' && !hasUnhandled(sections.packagekit)) continue; // read by the packages plugin
      ctx.refuse(`/plugins/${esc(name).slice(1)}`, `op-dbus plugin \`${name}\` is not supported`, PLUGINS[name]);
      delete sections[name];
    }
  }
  return doc;
}

/** packagekit sections that hold more than `packages` (repositories, manifest) are refused as a whole only when nothing maps. */
function hasUnhandled(section: unknown): boolean {
  if (!isObj(section)) return true;
  return !('packages' in section) && !('additional_packages' in section);
}
