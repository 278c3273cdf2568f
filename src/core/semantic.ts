/**
 * Semantic checks: what the schema cannot say but a backend would refuse at apply time. Every
 * rule is one entry of RULES, reports located problems (file:line:col, as schema errors) and
 * runs offline: it reads the document and, for systemd targets, the unit directories on disk
 * (under --root), never a backend.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isObj } from './diff.js';
import { invalidDocument, type Problem } from './errors.js';
import { pathToPointer } from './document.js';
import type { LoadedDocument, StateDocument } from './document.js';
import type { Obj, Settings } from './plugin.js';

export interface SemanticContext {
  doc: StateDocument;
  settings: Settings;
}

export interface SemanticRule {
  id: string;
  /** what it catches, for the README and --help */
  description: string;
  check(ctx: SemanticContext): Problem[];
}

const ptr = (...p: (string | number)[]) => pathToPointer(['plugins', ...p]);
const present = (v: unknown): v is Obj => isObj(v) && v.state !== 'absent';
const entries = (v: unknown): [string, Obj][] =>
  isObj(v) ? (Object.entries(v).filter(([, x]) => present(x)) as [string, Obj][]) : [];

/** Bridges an OVS section declares (present ones). */
function ovsBridges(doc: StateDocument): Set<string> | undefined {
  const ovs = doc.plugins.ovs;
  if (!isObj(ovs)) return undefined;
  return new Set(entries(ovs.bridges).map(([n]) => n));
}

/** Internal ports (interfaces of the host) the OVS section declares. */
function ovsInternalPorts(doc: StateDocument): Set<string> {
  const out = new Set<string>();
  for (const [, br] of entries(doc.plugins.ovs?.bridges))
    for (const [n, p] of entries(br.ports)) if (p.type === 'internal') out.add(n);
  return out;
}

/** Linux bridges and other links the document declares (net plugin), and libvirt's own bridges. */
function otherBridges(doc: StateDocument): Set<string> {
  const out = new Set<string>();
  for (const [n] of entries(doc.plugins.net?.interfaces)) out.add(n);
  for (const [, net] of entries(doc.plugins.libvirt?.networks)) if (typeof net.bridge === 'string') out.add(net.bridge);
  return out;
}

function declaredList(s: Set<string>): string {
  return s.size ? [...s].sort().join(', ') : 'none';
}

/** Targets systemd itself defines (systemd.special(7)): they need no unit file in the document. */
export const SPECIAL_TARGETS = new Set(
  (
    'basic bluetooth blockdev@ boot-complete cryptsetup-pre cryptsetup ctrl-alt-del default emergency exit factory-reset final first-boot-complete ' +
    'getty-pre getty graphical halt hibernate hybrid-sleep initrd-fs initrd-root-device initrd-root-fs initrd-switch-root initrd-usr-fs initrd ' +
    'integritysetup-pre integritysetup kbrequest kexec local-fs-pre local-fs machines multi-user network-online network-pre network ' +
    'nss-lookup nss-user-lookup paths poweroff printer reboot remote-cryptsetup remote-fs-pre remote-fs remote-integritysetup ' +
    'remote-veritysetup rescue rpcbind shutdown sigpwr sleep slices smartcard sockets soft-reboot sound storage-target-mode suspend-then-hibernate ' +
    'suspend swap sysinit system-update-pre system-update time-set time-sync timers tpm2 umount usb-gadget veritysetup-pre veritysetup'
  )
    .split(' ')
    .map((t) => `${t}.target`),
);

/** The [Install] WantedBy=/RequiredBy=/UpheldBy= names of a unit file, with their line in it. */
export function installTargets(text: string): { key: string; name: string; line: number }[] {
  const out: { key: string; name: string; line: number }[] = [];
  let section = '';
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (/^\[.*\]$/.test(l)) section = l;
    else if (section === '[Install]') {
      const m = /^(WantedBy|RequiredBy|UpheldBy)\s*=\s*(.*)$/.exec(l);
      if (m) for (const name of m[2].split(/\s+/).filter(Boolean)) out.push({ key: m[1], name, line: i });
    }
  });
  return out;
}

function unitDirs(settings: Settings): string[] {
  const root = (settings.root as string | undefined) ?? process.env.OPD_ROOT ?? '/';
  const own = (settings.systemdUnitDir as string | undefined) ?? process.env.OPD_SYSTEMD_UNIT_DIR;
  const std = [
    '/etc/systemd/system',
    '/run/systemd/system',
    '/usr/local/lib/systemd/system',
    '/usr/lib/systemd/system',
    '/lib/systemd/system',
  ];
  return [...(own ? [own] : []), ...std].map((d) => join(root, d));
}

export const RULES: SemanticRule[] = [
  {
    id: 'libvirt-forward-needs-ip',
    description:
      'a libvirt network with NAT (the default forward mode) or routed forwarding needs an `ip` (libvirt refuses: "nat forwarding requested, but no IP address provided")',
    check: ({ doc }) =>
      entries(doc.plugins.libvirt?.networks)
        .filter(([, n]) => ['nat', 'route'].includes((n.forward as string | undefined) ?? 'nat') && n.ip === undefined)
        .map(([name, n]) => ({
          pointer: ptr('libvirt', 'networks', name),
          message: `network ${JSON.stringify(name)} forwards with ${(n.forward as string | undefined) ?? 'nat'}${n.forward === undefined ? ' (the default)' : ''} but has no ip: libvirt would refuse it at apply ("${(n.forward as string | undefined) ?? 'nat'} forwarding requested, but no IP address provided")`,
          fix: 'give it an ip: { address: 192.168.100.1, prefix: 24 }, or forward: isolated / bridge',
        })),
  },
  {
    id: 'ovs-bridge-declared',
    description:
      'where the document has an ovs section, what it attaches to an OVS bridge (a container veth `link`, a libvirt domain interface `ovs_bridge` with or without a VLAN tag, a libvirt `ovs: true` network, a net interface of kind `ovs`) names a bridge or internal port that section declares; OVS ports sit under their bridge, so they always have it',
    check: ({ doc }) => {
      const bridges = ovsBridges(doc);
      if (!bridges) return [];
      const problems: Problem[] = [];
      const others = otherBridges(doc);
      for (const [name, c] of entries(doc.plugins.lxc?.containers)) {
        const net = Array.isArray(c.network) ? c.network : [];
        net.forEach((i: unknown, k) => {
          if (!isObj(i) || i.type !== 'veth' || typeof i.link !== 'string') return;
          if (bridges.has(i.link) || others.has(i.link)) return;
          problems.push({
            pointer: ptr('lxc', 'containers', name, 'network', k, 'link'),
            message: `container ${JSON.stringify(name)} links its veth to ${JSON.stringify(i.link)}, a bridge the document does not declare (ovs bridges: ${declaredList(bridges)})`,
            fix: `declare ${i.link} under ovs.bridges (or net.interfaces with kind: bridge), or link to a declared bridge`,
          });
        });
      }
      for (const [name, d] of entries(doc.plugins.libvirt?.domains)) {
        const ifs = Array.isArray(d.interfaces) ? d.interfaces : [];
        ifs.forEach((i: unknown, k) => {
          if (!isObj(i) || typeof i.ovs_bridge !== 'string' || bridges.has(i.ovs_bridge)) return;
          problems.push({
            pointer: ptr('libvirt', 'domains', name, 'interfaces', k, 'ovs_bridge'),
            message: `domain ${JSON.stringify(name)} attaches an interface${i.vlan !== undefined ? ` tagged ${String(i.vlan)}` : ''} to OVS bridge ${JSON.stringify(i.ovs_bridge)}, which the ovs section does not declare (it declares: ${declaredList(bridges)})`,
            fix: `declare ${i.ovs_bridge} under ovs.bridges, or correct the name`,
          });
        });
      }
      for (const [name, n] of entries(doc.plugins.libvirt?.networks)) {
        if (n.ovs !== true || typeof n.bridge !== 'string' || bridges.has(n.bridge)) continue;
        problems.push({
          pointer: ptr('libvirt', 'networks', name, 'bridge'),
          message: `network ${JSON.stringify(name)} forwards to OVS bridge ${JSON.stringify(n.bridge)}, which the ovs section does not declare (it declares: ${declaredList(bridges)})`,
          fix: `declare ${n.bridge} under ovs.bridges, or correct the name`,
        });
      }
      const internal = ovsInternalPorts(doc);
      for (const [name, i] of entries(doc.plugins.net?.interfaces)) {
        if (i.kind !== 'ovs' || internal.has(name) || bridges.has(name)) continue;
        problems.push({
          pointer: ptr('net', 'interfaces', name, 'kind'),
          message: `interface ${JSON.stringify(name)} is of kind ovs but the ovs section declares no internal port or bridge of that name`,
          fix: `add ${name}: { type: internal } under the ports of an ovs bridge, or correct the name`,
        });
      }
      return problems;
    },
  },
  {
    id: 'systemd-install-target-exists',
    description:
      'a unit file the document writes is WantedBy=/RequiredBy= a unit that exists: one the document declares, a systemd special target, or a unit file in the unit directories (under --root)',
    check: ({ doc, settings }) => {
      const units = entries(doc.plugins.systemd?.units);
      const declared = new Set(units.map(([n]) => n));
      const dirs = unitDirs(settings);
      const onDisk = (n: string) => dirs.some((d) => existsSync(join(d, n)));
      const known = (n: string) => {
        if (declared.has(n) || SPECIAL_TARGETS.has(n) || onDisk(n)) return true;
        const tpl = /^([^@]+@)[^.]+(\.[a-z]+)$/.exec(n);
        return !!tpl && (declared.has(tpl[1] + tpl[2]) || onDisk(tpl[1] + tpl[2]));
      };
      const problems: Problem[] = [];
      for (const [name, u] of units) {
        if (typeof u.unit_file !== 'string') continue;
        for (const t of installTargets(u.unit_file)) {
          if (t.name.includes('%') || known(t.name)) continue;
          problems.push({
            pointer: ptr('systemd', 'units', name, 'unit_file'),
            message: `${name} is ${t.key}=${t.name} (line ${t.line + 1} of the unit file), a unit that is neither in the document, a systemd special target, nor in ${dirs.join(', ')}: enabling it would fail`,
            fix: `declare ${t.name} under systemd.units (with its unit_file), or correct the name (e.g. multi-user.target)`,
          });
        }
      }
      return problems;
    },
  },
  {
    id: 'no-duplicate-addresses',
    description: 'one IP address is not given to two interfaces (net interfaces, container interfaces)',
    check: ({ doc }) => {
      const seen = new Map<string, string>();
      const problems: Problem[] = [];
      const add = (cidr: string, where: string, pointer: string) => {
        const ip = cidr.split('/')[0].toLowerCase();
        const first = seen.get(ip);
        if (first === undefined) seen.set(ip, where);
        else if (first !== where)
          problems.push({
            pointer,
            message: `address ${ip} is given to ${where} and already to ${first}`,
            fix: 'give each interface its own address',
          });
      };
      for (const [name, i] of entries(doc.plugins.net?.interfaces))
        for (const [cidr] of entries(i.addresses))
          add(cidr, `interface ${name}`, ptr('net', 'interfaces', name, 'addresses', cidr));
      for (const [name, c] of entries(doc.plugins.lxc?.containers)) {
        const net = Array.isArray(c.network) ? c.network : [];
        net.forEach((i: unknown, k) => {
          if (isObj(i) && typeof i.ipv4 === 'string')
            add(i.ipv4, `container ${name} interface ${k}`, ptr('lxc', 'containers', name, 'network', k, 'ipv4'));
        });
      }
      return problems;
    },
  },
];

/** Run every rule; throws invalid-document (exit 65) with all problems, located like schema errors. */
export function checkSemantics(
  doc: StateDocument,
  loaded: LoadedDocument | undefined,
  settings: Settings = {},
  rules: SemanticRule[] = RULES,
): void {
  const problems: Problem[] = [];
  for (const r of rules)
    for (const p of r.check({ doc, settings })) {
      if (loaded) {
        const pos = loaded.locate(p.pointer);
        Object.assign(p, { file: loaded.file, line: pos?.line, col: pos?.col });
      }
      problems.push({ ...p, message: `${p.message} [${r.id}]` });
    }
  if (!problems.length) return;
  throw invalidDocument(loaded?.file, problems);
}
