/**
 * What a plugin is, as data: its manifest (`src/plugins/<name>/manifest.ts`; docs/design.md,
 * "The plugin manifest"). The registry is the list of manifests, and everything the rest of opd
 * knows about a plugin before loading it is derived from them: the command-line flags and
 * environment variables of Settings, the tunables, which sections make it load (adoption), the
 * semantic rules of validation and the op-dbus forms it stands in for. A manifest imports nothing
 * of its plugin's backend (only types, node built-ins and small shared specs), so that `opd
 * --version` and `opd validate` load no plugin code they do not need; `load()` brings the plugin.
 */
import type { Plugin, Settings } from './plugin.js';
import type { SemanticRule } from './semantic.js';

/** One setting: a key of Settings, its environment variable, and its flag when it has one. */
export interface SettingSpec {
  /** The key in Settings (camelCase): `ovsDb`. */
  readonly key: string;
  /** The flag with its value's name, `--ovs-db <url>`; none: the environment variable only. */
  readonly flag?: string;
  readonly env: string;
  /** What the value is (shell completion and docs): a path, a URL, a number, a name, or text. */
  readonly type: 'path' | 'url' | 'number' | 'name' | 'string';
  /** The value when neither the flag nor the environment gives one. */
  readonly default?: string;
  /** What it sets, for --help, the man pages and docs/cli.md. */
  readonly help: string;
  /** The audit trail's run.start records it (where the run acted: a network namespace is not the host itself). */
  readonly audited?: boolean;
}

/** An op-dbus plugin section opd has no plugin of, that a plugin stands in for. */
export interface OpdbusSection {
  /** Why it is refused and what to write instead. */
  readonly hint: string;
  /** The section is read by the plugin's `adopt` (nothing to refuse) when this says so. */
  readonly adopted?: (body: unknown) => boolean;
}

/** op-dbus forms a plugin stands in for (src/core/opdbus.ts refuses them by name, with these hints). */
export interface OpdbusForms {
  /** op-dbus top-level keys (outside `plugins`) → what to write instead. */
  readonly topLevel?: Readonly<Record<string, string>>;
  /** op-dbus plugin sections opd has no plugin of → what to use instead. */
  readonly sections?: Readonly<Record<string, string | OpdbusSection>>;
  /** Keys of op-dbus installer manifests inside this plugin's own section that opd does not read → what to write instead. */
  readonly keys?: Readonly<Record<string, string>>;
}

export interface PluginManifest {
  /** Key under `plugins:`; the folder's name. */
  readonly name: string;
  /** Keys of the section that are maps of resources (name → spec). */
  readonly collections: readonly string[];
  /** The settings the plugin reads (a setting shared by several plugins is one object, listed by each). */
  readonly settings?: readonly SettingSpec[];
  /** The plugin's timeouts and limits (ms, or s where the name ends in S): a row here, not a number in the code. */
  readonly tunables?: Readonly<Record<string, number>>;
  /** Sections of foreign forms this plugin adopts entries from (Plugin.adopt): a document naming one loads it too. */
  readonly adoptsFrom?: readonly string[];
  /** What the schema cannot say but the backend would refuse (src/core/semantic.ts runs them offline). */
  readonly rules?: readonly SemanticRule[];
  readonly opdbus?: OpdbusForms;
  /** The plugin itself (a dynamic import: the plugin's code loads on first use). */
  load(): Promise<{ default: Plugin }>;
}

/**
 * A setting's value: from Settings (the flag, or the environment the CLI read), else its
 * environment variable (a caller that built Settings itself), else its default.
 */
export function settingOf(settings: Settings, spec: SettingSpec): string | undefined {
  const v = settings[spec.key];
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number') return String(v);
  const e = process.env[spec.env];
  if (e !== undefined && e !== '') return e;
  return spec.default;
}

/** The settings of these manifests, each once (by key), in the manifests' order; two different specs of one key, flag or variable throw. */
export function settingsOf(manifests: readonly PluginManifest[]): SettingSpec[] {
  const byKey = new Map<string, SettingSpec>();
  const seen = new Map<string, string>();
  for (const m of manifests)
    for (const s of m.settings ?? []) {
      const had = byKey.get(s.key);
      if (had === s) continue;
      for (const id of [`key ${s.key}`, `env ${s.env}`, ...(s.flag ? [`flag ${s.flag.split(' ')[0]}`] : [])]) {
        const other = seen.get(id);
        if (other !== undefined)
          throw new Error(
            `plugin ${m.name} declares setting ${id}, which ${other} declares differently: share one spec`,
          );
        seen.set(id, m.name);
      }
      byKey.set(s.key, s);
    }
  return [...byKey.values()];
}
