/**
 * The settings every command accepts, each with its flag and environment variable: opd's own
 * (`--root`) and the plugins' (each plugin's manifest, src/plugins/<name>/manifest.ts: derived by
 * the registry, each once). Plugins read them from Settings with `settingOf` (src/core/manifest.ts),
 * which falls back to the variable and then the default: a default is written once, in its spec.
 */
import type { SettingSpec } from '../core/manifest.js';
import { PLUGIN_SETTINGS } from '../plugins/index.js';

const ROOT: SettingSpec = {
  key: 'root',
  flag: '--root <dir>',
  env: 'OPD_ROOT',
  type: 'path',
  help: "the directory opd treats as / for what plugins keep in files (managed files, persistence files, accounts via --prefix, sysfs: each plugin's page says what)",
};

/** Every setting, sorted by flag (then the ones only an environment variable sets, by variable). */
export const SETTINGS: readonly SettingSpec[] = [ROOT, ...PLUGIN_SETTINGS].sort((a, b) =>
  a.flag && b.flag ? a.flag.localeCompare(b.flag) : a.flag ? -1 : b.flag ? 1 : a.env.localeCompare(b.env),
);

/** The settings that have a flag: the options of every command. */
export const SETTING_OPTIONS = SETTINGS.filter((s): s is SettingSpec & { flag: string } => s.flag !== undefined);

export const AUDIT_LOG_DEFAULT = '/var/lib/opd/audit.jsonl';
export const AUDIT_KEY_DEFAULT = '/etc/opd/audit.key';
