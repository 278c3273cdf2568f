/* Generated from schema/users.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

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
 * Allow data-destroying operations on this resource.
 */
export type CommonAllowDestroy = boolean;
export type Path = string;

export interface UsersDoc {
  users?: {
    [k: string]: User;
  };
}
export interface User {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  uid?: number;
  /**
   * Primary group (must exist; default: as useradd decides).
   */
  group?: string;
  /**
   * Supplementary groups to be a member of. Only added: memberships not named here are kept (remove with groups.<g>.members_absent).
   *
   * @maxItems 256
   */
  groups?: string[];
  home?: Path;
  shell?: Path;
  comment?: string;
  /**
   * A system user (uid below UID_MIN, no aging). Set at creation only.
   */
  system?: boolean;
  /**
   * Create the home directory at creation (useradd -m). Default: no.
   */
  create_home?: boolean;
}
