/* Generated from schema/files.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

export type Entry = (
  | {
      type?: 'file' | 'directory';
    }
  | {
      content?: never;
      source?: never;
      mode?: never;
      validate?: never;
    }
) &
  (
    | {
        type?: 'file' | 'symlink';
      }
    | {
        content?: never;
        source?: never;
        target?: never;
        validate?: never;
      }
  ) &
  (
    | {
        type?: 'directory' | 'symlink';
      }
    | {
        target?: never;
      }
  ) & {
    state?: CommonState;
    depends_on?: CommonDependsOn;
    allow_destroy?: CommonAllowDestroy;
    /**
     * Default: file (symlink when target is given).
     */
    type?: 'file' | 'directory' | 'symlink';
    /**
     * The whole content (UTF-8, at most 16 MiB). Never printed: output and the audit trail show hashes only.
     */
    content?: string;
    /**
     * Copy the content from this host path (read as is, not under --root).
     */
    source?: string;
    /**
     * Symlink target (written verbatim).
     */
    target?: string;
    mode?: string;
    owner?: Account;
    group?: Account;
    /**
     * Run on the new content before it replaces the file; a failure keeps the old file.
     */
    validate?: string;
    /**
     * The content is secret: summaries say only "content changed", without fingerprints.
     */
    secret?: boolean;
  };
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
export type Account = string;

/**
 * Keys are absolute paths. With --root DIR (OPD_ROOT) every path is applied under DIR.
 */
export interface FilesDoc {
  paths?: {
    [k: string]: Entry;
  };
}
