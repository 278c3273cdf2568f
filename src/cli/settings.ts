/**
 * The settings every command accepts, each with its flag and environment variable: opd's own
 * (`--root`) and the plugins' (each plugin's manifest, src/plugins/<name>/manifest.ts: derived by
 * the registry, each once). Plugins read them from Settings with `settingOf` (src/core/manifest.ts),
 * which falls back to the variable and then the default: a default is written once, in its spec.
 */
import { statSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { SettingSpec } from '../core/manifest.js';
import { OpdError } from '../core/errors.js';
import type { Settings } from '../core/plugin.js';
import { addOptions, type OptionRow } from './common.js';
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

/** The settings' options, then the logging ones (every command that runs plugins has them). */
export function addSettingOptions(cmd: Command): Command {
  for (const s of SETTING_OPTIONS)
    cmd.addOption(new Option(s.flag, `${s.help} (env ${s.env}${s.default ? `; default ${s.default}` : ''})`));
  cmd.addOption(
    new Option('--log-level <level>', 'log level on stderr (env OPD_LOG_LEVEL)').choices([
      'fatal',
      'error',
      'warn',
      'info',
      'debug',
      'trace',
      'silent',
    ]),
  );
  cmd.addOption(
    new Option(
      '--log-format <format>',
      'log lines on stderr: human, or json (pino JSON lines for journald/Loki; env OPD_LOG_FORMAT)',
    ).choices(['human', 'json']),
  );
  return cmd;
}

/** A command that looks at the host plugin by plugin (doctor, show): `--plugin a b`, the settings, its own rows. */
export function inspectCommand(name: string, description: string, rows: OptionRow[]): Command {
  return addSettingOptions(
    addOptions(new Command(name).description(description), [['--plugin <names...>', 'only these plugins'], ...rows]),
  );
}

export function settingsFrom(opts: Record<string, unknown>): Settings {
  const s: Settings = {};
  for (const o of SETTINGS) {
    const v = (opts[o.key] as string | undefined) ?? process.env[o.env];
    if (v !== undefined && v !== '') s[o.key] = v;
  }
  // a --root that does not exist would make every path "absent": a typo must not plan a whole host
  if (typeof s.root === 'string' && !isDir(s.root))
    throw new OpdError('usage', `--root ${s.root}: no such directory`, {
      hint: 'create it first (mkdir -p), or correct the path; --root (OPD_ROOT) is the directory opd treats as /',
    });
  return s;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
