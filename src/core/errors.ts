/**
 * The one error type of opd. Its `kind` decides the exit code and whether the core retries.
 */
import { isRetryable } from './tunables.js';

export type ErrorKind =
  | 'usage'
  | 'invalid-document'
  | 'backend-unavailable'
  | 'backend-failed'
  /** Transient trouble (a lock held, a timeout, a backend starting up): the core retries it. */
  | 'backend-busy'
  | 'verification-failed'
  | 'dependency-failed'
  | 'refused'
  | 'lock-busy'
  | 'audit-broken'
  | 'permission'
  | 'io-error'
  | 'stale-plan'
  | 'bug';

/** One located problem in a document (validation reports all of them at once). */
export interface Problem {
  file?: string;
  line?: number;
  col?: number;
  pointer: string;
  message: string;
  fix?: string;
}

export const EXIT = {
  ok: 0,
  failed: 1,
  changesPending: 2,
  /** a saved plan no longer matches the document or the host */
  stalePlan: 3,
  usage: 64,
  invalidDocument: 65,
  backendUnavailable: 69,
  bug: 70,
  ioError: 74,
  lockBusy: 75,
  permission: 77,
} as const;

const exitByKind: Record<ErrorKind, number> = {
  usage: EXIT.usage,
  'invalid-document': EXIT.invalidDocument,
  'backend-unavailable': EXIT.backendUnavailable,
  'backend-failed': EXIT.failed,
  'backend-busy': EXIT.failed,
  'verification-failed': EXIT.failed,
  'dependency-failed': EXIT.failed,
  refused: EXIT.failed,
  'lock-busy': EXIT.lockBusy,
  'audit-broken': EXIT.failed,
  permission: EXIT.permission,
  'io-error': EXIT.ioError,
  'stale-plan': EXIT.stalePlan,
  bug: EXIT.bug,
};

export interface OpdErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  /** Located document problems (invalid-document). */
  problems?: Problem[];
  /** Resource address the error is about. */
  address?: string;
  cause?: unknown;
}

export class OpdError extends Error {
  readonly kind: ErrorKind;
  readonly hint?: string;
  readonly problems: Problem[];
  readonly address?: string;

  constructor(kind: ErrorKind, message: string, opts: OpdErrorOptions = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'OpdError';
    this.kind = kind;
    this.hint = opts.hint;
    this.problems = opts.problems ?? [];
    this.address = opts.address;
  }

  /** The core retries it: decided by the kind (src/core/tunables.ts), never per error. */
  get retryable(): boolean {
    return isRetryable(this.kind);
  }

  get exitCode(): number {
    return exitByKind[this.kind];
  }

  /** Human text: message, every located problem, and the hint. No stack trace. */
  format(): string {
    const lines = [`opd: ${this.message}`];
    for (const p of this.problems) lines.push('  ' + formatProblem(p));
    if (this.hint) lines.push(`  hint: ${this.hint}`);
    return lines.join('\n');
  }

  toJSON(): Record<string, unknown> {
    return {
      kind: this.kind,
      message: this.message,
      ...(this.address ? { address: this.address } : {}),
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.problems.length
        ? { problems: this.problems.map((p) => ({ ...p, ...(p.pointer ? { path: keyPath(p.pointer) } : {}) })) }
        : {}),
    };
  }
}

/**
 * Every located problem of a document at once (invalid-document, exit 65), sorted by position
 * then pointer. `what` follows the count ("with parameters").
 */
export function invalidDocument(
  file: string | undefined,
  problems: Problem[],
  opts: { what?: string; hint?: string } = {},
): OpdError {
  problems.sort(
    (a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0) || a.pointer.localeCompare(b.pointer),
  );
  const n = problems.length;
  return new OpdError(
    'invalid-document',
    `${file ?? 'document'}: ${n} problem${n === 1 ? '' : 's'}${opts.what ? ` ${opts.what}` : ''}`,
    { problems, hint: opts.hint ?? 'fix every problem listed, then run `opd validate` again' },
  );
}

/**
 * A JSON pointer as the document's own key path, the way jq and yq write it:
 * `/plugins/files/paths/~1etc~1x/mode` → `plugins.files.paths["/etc/x"].mode`, `/a/0` → `a[0]`.
 */
export function keyPath(pointer: string): string {
  if (pointer === '' || pointer === '/') return '';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^(0|[1-9][0-9]*)$/.test(k)) out += `[${k}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(k)}]`;
  }
  return out;
}

export function formatProblem(p: Problem): string {
  const where = p.file ? `${p.file}:${p.line ?? 1}:${p.col ?? 1}` : '<document>';
  const ptr = p.pointer === '' ? '(document root)' : keyPath(p.pointer);
  return `${where}: ${ptr}: ${p.message}${p.fix ? ` (fix: ${p.fix})` : ''}`;
}

/** Wrap anything thrown into an OpdError; unknown errors are bugs. */
export function toOpdError(err: unknown): OpdError {
  if (err instanceof OpdError) return err;
  if (err && typeof err === 'object' && 'code' in err) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = String((err as { message?: unknown }).message);
    if (code === 'EACCES' || code === 'EPERM')
      return new OpdError('permission', msg, {
        hint: 'run opd as root, or point it at paths you may write',
        cause: err,
      });
    if (code === 'ENOSPC' || code === 'EIO' || code === 'EROFS')
      return new OpdError('backend-failed', msg, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new OpdError('bug', `internal error: ${message}`, {
    hint: 'this is a bug in opd; rerun with --log-level debug and report it',
    cause: err,
  });
}

/** The call's signal fired because its time was up (AbortSignal.timeout), not because the run was stopped. */
export function timedOut(signal: AbortSignal | undefined): boolean {
  return (signal?.reason as Error | undefined)?.name === 'TimeoutError';
}

/**
 * The error of a call that an AbortSignal ended, the same at every door (processes, the bus,
 * OVSDB). `signal` is the one that fired: when its time was up (AbortSignal.timeout, the call's
 * own or the core's per-call one) that is transient trouble (`backend-busy`, the core retries
 * it); a stopped run is final (`backend-failed`). `what` names the call ("sleep 30").
 */
export function abortedError(signal: AbortSignal | undefined, what: string, opts: OpdErrorOptions = {}): OpdError {
  return timedOut(signal)
    ? new OpdError('backend-busy', `${what} timed out`, opts)
    : new OpdError('backend-failed', `${what} was stopped: the run was stopped`, opts);
}
