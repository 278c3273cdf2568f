/** What the packages plugin needs from a package manager (PackageKit or apt/dpkg). */
import type { ApplyContext, ReadContext, Settings } from '../../core/plugin.js';
import type { OpdError } from '../../core/errors.js';

export type BackendName = 'packagekit' | 'apt';
export const BACKEND_NAMES = ['auto', 'packagekit', 'apt'] as const;

export interface InstalledPackage {
  version: string;
  arch: string;
  /** The backend's own handle (PackageKit package id). */
  id?: string;
}

export interface InstallItem {
  name: string;
  /** Exactly this version; undefined = the candidate (only when not installed). */
  version?: string;
  /** Install from this local .deb (verified, in opd's source cache) instead of a repository. */
  file?: string;
}

export interface TxResult {
  /** Packages that failed on their own (unknown name, version not available), with the error naming them. */
  failed: Map<string, OpdError>;
}

export interface PackageBackend {
  readonly name: BackendName;
  /** One query: the installed packages among `names` (all installed packages when names is undefined). */
  query(ctx: ReadContext, names?: string[]): Promise<Map<string, InstalledPackage>>;
  /**
   * One query: installed packages that would also go if `names` (all installed) were removed,
   * as the package manager resolves it. Members of `names` are not listed.
   */
  alsoRemoved(ctx: ReadContext, installed: Map<string, InstalledPackage>): Promise<string[]>;
  /** One transaction for all installs/version changes. */
  install(ctx: ApplyContext, items: InstallItem[]): Promise<TxResult>;
  /** One transaction for all removals (as `query` returned them); allowDeps: packages that depend on them may go too. */
  remove(ctx: ApplyContext, installed: Map<string, InstalledPackage>, allowDeps: boolean): Promise<TxResult>;
  /** One line for `opd doctor`. */
  describe(settings: Settings): Promise<string>;
}
