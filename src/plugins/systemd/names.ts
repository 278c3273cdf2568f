/** Unit names: kinds, templates, D-Bus object paths, file locations. Pure. */
import { join, resolve } from 'node:path';
import type { Settings } from '../../core/plugin.js';
import { rootOf } from '../../core/hostfs.js';
import { settingOf } from '../../core/manifest.js';
import { UNIT_DIR } from './manifest.js';

export const UNIT_NAME_RE =
  /^([A-Za-z0-9:_.-]|\\x[0-9a-f]{2})+(@([A-Za-z0-9:_.-]|\\x[0-9a-f]{2})*)?\.(service|socket|timer|target|path|mount|automount|swap|slice)$/;

/** Where opd records which files it wrote, per unit (a hidden directory systemd ignores). */
export const OWNED_DIR = '.opd-managed';

export function isValidUnitName(n: string): boolean {
  return n.length <= 255 && UNIT_NAME_RE.test(n) && !n.includes('..') && !n.startsWith('.');
}

/** `foo@.service` */
export function isTemplate(n: string): boolean {
  return /@\.[a-z]+$/.test(n);
}

/** `foo@bar.service` */
export function isInstance(n: string): boolean {
  return n.includes('@') && !isTemplate(n);
}

/** The template of an instance: foo@bar.service → foo@.service. */
export function templateOf(n: string): string | undefined {
  if (!isInstance(n)) return undefined;
  const at = n.indexOf('@');
  const dot = n.lastIndexOf('.');
  return n.slice(0, at + 1) + n.slice(dot);
}

/** sd_bus object path label escaping (bus_label_escape). */
export function unitObjectPath(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (/[A-Za-z]/.test(c) || (i > 0 && /[0-9]/.test(c))) out += c;
    else out += '_' + name.charCodeAt(i).toString(16).padStart(2, '0');
  }
  return '/org/freedesktop/systemd1/unit/' + out;
}

/** fnmatch pattern matching exactly this name (escape \ and glob characters). */
export function exactPattern(name: string): string {
  return name.replace(/[\\*?[\]]/g, (c) => '\\' + c);
}

/** The unit directory as the host names it (`--systemd-unit-dir`); under `--root` it lies under the root. */
export function unitDir(settings: Settings): string {
  return resolve(settingOf(settings, UNIT_DIR)!);
}

/** Where the unit directory is read (under `--root` when given); writes go through the host doors with unitDir. */
export function unitHostDir(settings: Settings): string {
  return rootOf(settings) + unitDir(settings);
}

/** Relative paths inside the unit dir. */
export const rel = {
  unitFile: (unit: string) => unit,
  dropin: (unit: string, name: string) => `${unit}.d/${name}`,
  dropinDir: (unit: string) => `${unit}.d`,
  owned: (unit: string) => join(OWNED_DIR, `${unit}.json`),
};

/**
 * Enabled as `systemctl is-enabled` says, except that static and indirect units (no [Install]
 * section of their own) count as not enabled: `enabled: false` holds for them, and
 * `enabled: true` fails with a clear error instead of never converging.
 */
const ENABLED_STATES = new Set(['enabled', 'enabled-runtime', 'generated', 'transient', 'alias']);

export function enabledOf(fileState: string): boolean {
  return ENABLED_STATES.has(fileState);
}

export function maskedOf(fileState: string): boolean {
  return fileState === 'masked' || fileState === 'masked-runtime';
}

/** ActiveState as opd reports it: reloading counts as active. */
export function activeOf(state: string): string {
  return state === 'reloading' ? 'active' : state;
}

export function isRunning(state: unknown): boolean {
  return state === 'active' || state === 'reloading' || state === 'activating' || state === 'deactivating';
}
