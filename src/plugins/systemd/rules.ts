/**
 * systemd's semantic rules (src/core/semantic.ts runs them offline, at validation): a unit file
 * the document writes is installed into units that exist (in the document, special, or on disk).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Problem } from '../../core/errors.js';
import { settingOf } from '../../core/manifest.js';
import type { Settings } from '../../core/plugin.js';
import type { SemanticRule } from '../../core/semantic.js';
import { presentEntries, sectionPointer } from '../../core/semantic.js';
import type { SettingSpec } from '../../core/manifest.js';

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

function unitDirs(settings: Settings, unitDir: SettingSpec): string[] {
  const root = (settings.root as string | undefined) ?? process.env.OPD_ROOT ?? '/';
  const own = settingOf(settings, { ...unitDir, default: undefined });
  const std = [
    '/etc/systemd/system',
    '/run/systemd/system',
    '/usr/local/lib/systemd/system',
    '/usr/lib/systemd/system',
    '/lib/systemd/system',
  ];
  return [...(own ? [own] : []), ...std].map((d) => join(root, d));
}

/** The rules, given the unit directory setting (the manifest's: `--systemd-unit-dir`). */
export const rules = (unitDir: SettingSpec): SemanticRule[] => [
  {
    id: 'systemd-install-target-exists',
    description:
      'a unit file the document writes is WantedBy=/RequiredBy= a unit that exists: one the document declares, a systemd special target, or a unit file in the unit directories (under --root)',
    check: ({ doc, settings }) => {
      const units = presentEntries(doc.plugins.systemd?.units);
      const declared = new Set(units.map(([n]) => n));
      const dirs = unitDirs(settings, unitDir);
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
            pointer: sectionPointer('systemd', 'units', name, 'unit_file'),
            message: `${name} is ${t.key}=${t.name} (line ${t.line + 1} of the unit file), a unit that is neither in the document, a systemd special target, nor in ${dirs.join(', ')}: enabling it would fail`,
            fix: `declare ${t.name} under systemd.units (with its unit_file), or correct the name (e.g. multi-user.target)`,
          });
        }
      }
      return problems;
    },
  },
];
