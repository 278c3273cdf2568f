/* Generated from schema/exec.schema.json by scripts/gen-schema-types.mjs: do not edit (npm run gen:types). */

export type Command = Command1 & {
  depends_on?: CommonDependsOn;
  description?: string;
  argv?: Argv;
  /**
   * A script run by /bin/sh -c (only when you ask for a shell: prefer argv).
   */
  shell?: string;
  /**
   * Runs only while this path does not exist.
   */
  creates?: string;
  unless?: Argv1;
  onlyif?: Argv2;
  /**
   * Runs when one of these resources changed in this run (refreshonly), and never on its own.
   *
   * @minItems 1
   */
  refresh_on?: [CommonAddress, ...CommonAddress[]];
  /**
   * Run as this user (runuser; opd must run as root). Default: the user opd runs as.
   */
  user?: string;
  cwd?: string;
  env?: {
    [k: string]: string;
  };
  /**
   * Seconds (default 300); the command is killed after it.
   */
  timeout?: number;
  /**
   * Exit codes that mean success (default [0]).
   *
   * @minItems 1
   */
  returns?: [number, ...number[]];
} & Command2;
export type Command1 =
  | {
      creates: unknown;
    }
  | {
      unless: unknown;
    }
  | {
      onlyif: unknown;
    }
  | {
      refresh_on: unknown;
    };
export type CommonAddress = string;
/**
 * Resources that must be converged before this one.
 */
export type CommonDependsOn = CommonAddress[];
/**
 * The command and its arguments, run without a shell.
 *
 * @minItems 1
 * @maxItems 4096
 */
export type Argv = [string, ...string[]];
/**
 * Runs only when this command fails (exit != 0).
 *
 * @minItems 1
 * @maxItems 4096
 */
export type Argv1 = [string, ...string[]];
/**
 * Runs only when this command succeeds (exit 0).
 *
 * @minItems 1
 * @maxItems 4096
 */
export type Argv2 = [string, ...string[]];
export type Command2 =
  | {
      argv: unknown;
    }
  | {
      shell: unknown;
    };

/**
 * A command runs when its guard says it has not run yet (creates / unless / onlyif), or when a resource it subscribes to (refresh_on) changed in this run. argv only; a shell only with `shell:`. Guard commands run on every read (opd diff too): they must not change the host.
 */
export interface ExecDoc {
  commands?: {
    [k: string]: Command;
  };
}
