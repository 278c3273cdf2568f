/**
 * SIGINT and SIGTERM during a run (opd apply, opd daemon): the first one stops the run cleanly
 * (start no new change, let the ones in flight finish, record them, run.end with `interrupted`);
 * a second one aborts the changes in flight at once and ends the process: their intents stay in
 * the trail without an outcome, and the next opd run reads them from the host (recovery).
 */
import { constants } from 'node:os';

export type StopSignal = 'SIGINT' | 'SIGTERM';

/** The exit status of a process ended by `sig` (128 + its number): 130, 143. */
export function signalExit(sig: string): number {
  const n = (constants.signals as Record<string, number>)[sig];
  return 128 + (n ?? 15);
}

export interface Trap {
  /** fires at the first signal; its reason is the signal's name */
  stop: AbortSignal;
  /** fires at the second signal (the changes in flight are aborted) */
  abort: AbortSignal;
  /** remove the handlers (the signals' default action applies again) */
  dispose(): void;
  /**
   * The run has ended. Without a signal so far, the handlers go (a signal now has its default
   * action). After a first signal they stay: the process is ending with 128 + its number, and a
   * second signal ends it at once with that status (never killed by the signal with no status).
   */
  settle(): void;
}

/**
 * Catch SIGINT/SIGTERM. `onFirst` says what happens; at the second signal the abort signal
 * fires (the doors end their child processes at once), `onSecond` says so, and the process ends
 * with 128 + the signal's number.
 */
export function trapStopSignals(onFirst: (sig: StopSignal) => void, onSecond: (sig: StopSignal) => void): Trap {
  const stop = new AbortController();
  const abort = new AbortController();
  let settled = false;
  const handler = (sig: StopSignal) => {
    if (!stop.signal.aborted) {
      stop.abort(sig);
      onFirst(sig);
      return;
    }
    // nothing is in flight once the run has ended: nothing to abort or report
    if (!settled) {
      abort.abort(sig);
      onSecond(sig);
    }
    // the lock goes with the process (its 'exit' handler); the intents stay for recovery
    process.exit(signalExit(sig));
  };
  const onInt = () => handler('SIGINT');
  const onTerm = () => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const dispose = () => {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  };
  return {
    stop: stop.signal,
    abort: abort.signal,
    dispose,
    settle: () => {
      if (stop.signal.aborted) settled = true;
      else dispose();
    },
  };
}

/** No trap (a dry run): signals keep their default action. */
export function noTrap(): Trap {
  const never = new AbortController().signal;
  return { stop: never, abort: never, dispose: () => {}, settle: () => {} };
}
