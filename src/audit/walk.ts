/**
 * The one detailed walk of the audit chain, line by line: each entry must be JSON, carry the
 * next seq, the previous entry's hash as `prev`, and `hash = sha256(prev ‖ its body)`. Used
 * by `opd audit verify` (to name the first broken entry and why) and by recovery when a
 * writer died between writing a batch and moving the head (does the chain continue from the
 * head?). verify.ts has a byte-level fast pass in front of it for the common, intact case.
 */
import { sha256 } from '../core/canonical.js';

export const GENESIS = '0'.repeat(64);
const HASH_SUFFIX_LEN = ',"hash":"'.length + 64 + '"}'.length;

export interface AuditEntry {
  seq: number;
  ts: string;
  run: string;
  type: string;
  prev: string;
  hash: string;
  [k: string]: unknown;
}

/** The canonical body text of a line (the line without its trailing hash member). */
export function bodyOf(line: string): string | undefined {
  if (line.length < HASH_SUFFIX_LEN + 2 || !line.endsWith('"}')) return undefined;
  const suffix = line.slice(-HASH_SUFFIX_LEN);
  if (!suffix.startsWith(',"hash":"')) return undefined;
  return line.slice(0, -HASH_SUFFIX_LEN) + '}';
}

/** Why a line does not continue the chain, and the seq it concerns. */
export interface Break {
  reason: string;
  seq?: number;
}

export class ChainWalker {
  /** Entries accepted so far. */
  entries = 0;
  /** Of those, how many start a run. */
  runs = 0;
  /** The hash before the last accepted entry's (its prev). */
  lastPrev: string;

  /** Start after entry `seq` whose hash is `prev` (the genesis: 0 and 64 zeros). */
  constructor(
    public seq = 0,
    public prev = GENESIS,
  ) {
    this.lastPrev = prev;
  }

  /** Accept the next line, or say why it breaks the chain (the walker then stays where it was). */
  next(line: string): AuditEntry | Break {
    let e: AuditEntry;
    try {
      e = JSON.parse(line) as AuditEntry;
    } catch {
      return { reason: 'entry is not valid JSON (edited or corrupted)', seq: this.seq + 1 };
    }
    if (typeof e !== 'object' || e === null || typeof e.seq !== 'number')
      return { reason: 'entry has no seq', seq: this.seq + 1 };
    if (e.seq !== this.seq + 1)
      return {
        reason:
          e.seq <= this.seq
            ? `seq ${e.seq} repeats or goes back after ${this.seq} (duplicated or reordered entry)`
            : `seq jumps from ${this.seq} to ${e.seq} (entries deleted)`,
        seq: e.seq,
      };
    if (e.prev !== this.prev)
      return {
        reason: `prev does not match the hash of entry ${this.seq} (entry deleted, reordered or inserted)`,
        seq: e.seq,
      };
    const body = bodyOf(line);
    if (body === undefined || sha256(this.prev + body) !== e.hash)
      return { reason: 'hash does not match the entry (entry edited)', seq: e.seq };
    if (e.type === 'run.start') this.runs++;
    this.lastPrev = this.prev;
    this.prev = e.hash;
    this.seq = e.seq;
    this.entries++;
    return e;
  }
}

export function isBreak(r: AuditEntry | Break): r is Break {
  return 'reason' in r && !('hash' in r);
}
