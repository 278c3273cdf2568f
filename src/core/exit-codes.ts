/**
 * What each exit code means and what to do about it: opd(1)'s EXIT STATUS, docs/troubleshooting.md
 * and docs/cli.md are made from this table; a test fails when a code of EXIT has no row here.
 */
import { EXIT } from './errors.js';

export interface ExitCodeDoc {
  code: number;
  /** The name in EXIT (the signal's, for 130 and 143: 128 + its number). */
  name: string;
  meaning: string;
  /** What to do about it. */
  fix: string;
}

export const EXIT_CODES: readonly ExitCodeDoc[] = [
  {
    code: EXIT.ok,
    name: 'ok',
    meaning: 'done: the host matches the document (apply, diff), the document is valid, the audit chain is intact',
    fix: 'nothing to do',
  },
  {
    code: EXIT.failed,
    name: 'failed',
    meaning:
      'a change failed, a verification found a resource still differing, a check or a refusal blocked the run, the audit chain is broken, `apply --partial` left a backend out, or a `--confirm` run was reverted',
    fix: 'read the lines marked failed, refused or blocked (each names the resource and why); `opd audit log --tail 20` shows what was recorded; fix the cause and run `opd apply` again',
  },
  {
    code: EXIT.changesPending,
    name: 'changesPending',
    meaning: '`opd diff` (or `apply --dry-run`, `show-plan`, `fleet diff`) found changes to make',
    fix: 'not an error: review the plan, then `opd apply`',
  },
  {
    code: EXIT.stalePlan,
    name: 'stalePlan',
    meaning:
      '`opd apply plan.json`: the document or a planned resource changed since `opd diff --out`; nothing was applied',
    fix: 'make and review a new plan: `opd diff state.yaml --out plan.json`',
  },
  {
    code: EXIT.usage,
    name: 'usage',
    meaning:
      'the command line is wrong: an unknown command or flag, a missing argument, a bad value, an unknown plugin in --only',
    fix: '`opd COMMAND --help` lists the arguments and flags',
  },
  {
    code: EXIT.invalidDocument,
    name: 'invalidDocument',
    meaning:
      'the document is invalid: schema, semantic rules, parameters (each problem is printed with file:line:col); nothing on the host was touched',
    fix: 'fix each line named, then `opd validate FILE`',
  },
  {
    code: EXIT.backendUnavailable,
    name: 'backendUnavailable',
    meaning: 'a backend the document needs is not reachable (system bus, libvirtd, OVSDB, a database server, etcd)',
    fix: '`opd doctor` says which one and why; start it, point opd at it (with the flag its plugin reads: `opd doctor` names it), or `opd apply --partial` to converge the rest',
  },
  {
    code: EXIT.bug,
    name: 'bug',
    meaning: 'an internal error: opd did something it should not',
    fix: 'run again with OPD_DEBUG=1 and report the stack trace it prints',
  },
  {
    code: EXIT.ioError,
    name: 'ioError',
    meaning: 'the audit trail cannot be written (disk full, read-only file system); checked before anything is applied',
    fix: 'free space where the trail lives (/var/lib/opd), or move it with --audit-log',
  },
  {
    code: EXIT.lockBusy,
    name: 'lockBusy',
    meaning: 'another run holds the audit trail lock (or a `--confirm` run waits for `opd confirm`)',
    fix: 'wait for it (the message names its pid; --lock-wait SECONDS waits longer), or `opd confirm` / let the pending run revert',
  },
  {
    code: EXIT.permission,
    name: 'permission',
    meaning: 'permission denied: not root, an unreadable file, or etcd refused the credentials or the TLS handshake',
    fix: 'run as root (sudo opd …), or fix the file or credentials the message names',
  },
  {
    code: 130,
    name: 'SIGINT',
    meaning:
      'stopped by SIGINT (Ctrl-C): no new change was started, the changes in flight finished and every outcome is in the audit trail (run.end `interrupted: SIGINT`); it printed `interrupted: N applied, M not started`',
    fix: 'run `opd apply` again to make the changes not started; a second Ctrl-C aborts the changes in flight, and the next run reads them from the host (recovered entries in `opd audit log`)',
  },
  {
    code: 143,
    name: 'SIGTERM',
    meaning:
      'stopped by SIGTERM, as after SIGINT (run.end `interrupted: SIGTERM`); `opd daemon` stopped by systemd exits 0 instead, as its unit expects',
    fix: 'run `opd apply` again to make the changes not started',
  },
];
