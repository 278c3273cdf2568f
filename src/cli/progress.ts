/**
 * Live progress of `opd apply`: each change's line when it completes (its audit entry is on disk
 * by then), `still applying ADDRESS (10 s)` every 10 s while a change runs, and for waves over
 * PROGRESS.counterOver changes a counter (`[1,200/2,000]`) on a terminal — one status line
 * rewritten in place — or a periodic `progress:` line when the output is a pipe or a file.
 */
import type { ChangeOutcome } from '../core/apply.js';
import type { PlannedChange } from '../core/plan.js';
import { displayAddress } from '../core/plan.js';
import { flushOut, type Io } from './common.js';
import { paint, type Style } from './output.js';

export const PROGRESS = {
  /** Waves of more changes than this get a counter. */
  counterOver: 50,
  /** A change that has run this long shows in the terminal's status line. */
  showRunningMs: 2_000,
  /** `still applying ADDRESS (N s)` every this long while a change runs. */
  stillEveryMs: 10_000,
  /** A `progress:` line every this long when the output is not a terminal (and the wave is big). */
  pipeEveryMs: 5_000,
  /** How often the clock is looked at. */
  tickMs: 250,
};

const n = (x: number) => x.toLocaleString('en-US');

/** A batch a plugin works through (one change at a time): its waiting changes share its clock. */
interface Batch {
  /** when it started, or when its last change finished */
  since: number;
  /** the last `still applying` it got, in seconds */
  told: number;
  /** its changes not done yet */
  left: number;
  changes: PlannedChange[];
  /** changes before this index are done */
  next: number;
}

export interface ProgressOptions {
  io: Io;
  style: Style;
  /** stdout is a terminal: the counter is a status line rewritten in place */
  tty: boolean;
  /** --quiet: only failures and the summary */
  quiet: boolean;
  /** changes in the plan */
  total: number;
  now?: () => number;
}

export class Progress {
  private done = 0;
  /** running changes (by id) → their batch; per outcome O(1), whatever the batch's size */
  private readonly running = new Map<number, Batch>();
  private readonly active = new Set<Batch>();
  private statusShown = false;
  private lastPipe: number;
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? (() => Date.now());
    this.lastPipe = this.now();
  }

  /** The changes of a batch a plugin started on. */
  start(changes: PlannedChange[]): void {
    const b: Batch = { since: this.now(), told: 0, left: changes.length, changes, next: 0 };
    if (changes.length) this.active.add(b);
    for (const c of changes) this.running.set(c.id, b);
    if (!this.timer && !this.o.quiet) {
      this.timer = setInterval(() => this.tick(), PROGRESS.tickMs);
      this.timer.unref();
    }
  }

  /** A change's outcome; `line`: what to print for it (empty: nothing). */
  outcome(x: ChangeOutcome, line: string): void {
    this.done++;
    const t = this.now();
    const b = this.running.get(x.change.id);
    this.running.delete(x.change.id);
    // the rest of its batch waits from now on, not from the batch's start
    if (b) {
      b.since = t;
      b.told = 0;
      if (--b.left <= 0) this.active.delete(b);
    }
    if (line) this.print(line);
    this.status();
  }

  /** Print a line (the status line, if any, is cleared first and drawn again after). */
  print(line: string): void {
    this.clear();
    this.o.io.out(line);
  }

  /** The oldest running change (what the wave waits for): the first change not done of the batch waiting longest. */
  private oldest(): { change: PlannedChange; batch: Batch; since: number } | undefined {
    let best: Batch | undefined;
    for (const b of this.active) if (!best || b.since < best.since) best = b;
    if (!best) return undefined;
    while (best.next < best.changes.length && this.running.get(best.changes[best.next].id) !== best) best.next++;
    const change = best.changes[best.next];
    return change && { change, batch: best, since: best.since };
  }

  private tick(): void {
    const t = this.now();
    const r = this.oldest();
    if (r) {
      const secs = Math.floor((t - r.since) / PROGRESS.stillEveryMs) * (PROGRESS.stillEveryMs / 1000);
      if (secs > 0 && secs > r.batch.told) {
        r.batch.told = secs;
        const more = r.batch.left - 1;
        this.print(
          paint(
            this.o.style,
            'dim',
            `still applying ${displayAddress(r.change.address)} (${secs} s)${more > 0 ? `; ${n(more)} more waiting in its batch` : ''}`,
          ),
        );
      }
    }
    if (this.o.total > PROGRESS.counterOver && !this.o.tty && t - this.lastPipe >= PROGRESS.pipeEveryMs) {
      this.lastPipe = t;
      this.o.io.out(`progress: ${n(this.done)} of ${n(this.o.total)} changes done`);
    }
    this.status();
  }

  private clear(): void {
    flushOut(); // stdout's buffered lines first: the status line is written directly
    if (this.statusShown) {
      process.stdout.write('\r\x1b[2K');
      this.statusShown = false;
    }
  }

  /** The terminal's status line: `[1,200/2,000] applying ADDRESS (3 s)`. */
  private status(): void {
    if (!this.o.tty || this.o.quiet) return;
    const r = this.oldest();
    const big = this.o.total > PROGRESS.counterOver;
    const slow = r && this.now() - r.since >= PROGRESS.showRunningMs;
    if (!big && !slow) return this.clear();
    const parts: string[] = [];
    if (big) parts.push(`[${n(this.done)}/${n(this.o.total)}]`);
    if (r && (slow || big))
      parts.push(
        `applying ${displayAddress(r.change.address)}${slow ? ` (${Math.floor((this.now() - r.since) / 1000)} s)` : ''}`,
      );
    const cols = process.stdout.columns ?? 80;
    let s = parts.join(' ');
    if (s.length > cols - 1) s = s.slice(0, cols - 2) + '…';
    flushOut();
    process.stdout.write('\r\x1b[2K' + paint(this.o.style, 'dim', s));
    this.statusShown = true;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }
}
