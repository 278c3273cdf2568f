/* Generated from schema/groups.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

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
/**
 * Users that must be supplementary members. Only added: members not named here are kept.
 *
 * @maxItems 4096
 */
export type Members = string[];
/**
 * Users that must not be supplementary members (removed when they are).
 *
 * @maxItems 4096
 */
export type Members1 = string[];

export interface GroupsDoc {
  groups?: {
    [k: string]: Group;
  };
}
export interface Group {
  state?: CommonState;
  depends_on?: CommonDependsOn;
  allow_destroy?: CommonAllowDestroy;
  gid?: number;
  /**
   * A system group (gid below GID_MIN). Set at creation only.
   */
  system?: boolean;
  members?: Members;
  members_absent?: Members1;
}
