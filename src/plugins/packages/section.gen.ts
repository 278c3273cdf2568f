/* Generated from schema/packages.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

/**
 * absent removes the resource.
 */
export type CommonState = 'present' | 'absent';
export type CommonAddress = string;
/**
 * Resources that must be converged before this one.
 */
export type CommonDependsOn = CommonAddress[];

/**
 * Packages through PackageKit (D-Bus) where it answers, apt/dpkg otherwise. Only the packages the document names are managed.
 */
export interface PackagesDoc {
  /**
   * auto (default): PackageKit when it answers on the system bus, else apt/dpkg. The --packages-backend flag (OPD_PACKAGES_BACKEND) overrides it.
   */
  backend?: 'auto' | 'packagekit' | 'apt';
  installed?: {
    [k: string]: Package;
  };
}
export interface Package {
  /**
   * Exactly this version installed (upgrading or downgrading to it). Without it any installed version is fine.
   */
  version?: string;
  state?: CommonState;
  /**
   * Allow removing this package although other installed packages depend on it (they are removed too).
   */
  allow_destroy?: boolean;
  depends_on?: CommonDependsOn;
}
