/**
 * The audit trail: append-only JSON Lines, each entry chained to the one before:
 *   hash = sha256(prev ‖ canonical JSON of the entry without `hash`)
 * The line is that canonical JSON with `"hash"` appended last, so verification hashes the
 * line's own bytes. A head file beside the log holds the last {seq, hash} (HMAC-sealed when
 * a key is configured) so that truncation and whole-chain rewrites are detected too.
 */
import {
  openSync,
  writeSync,
  fsyncSync,
  closeSync,
  readFileSync,
  statSync,
  readSync,
  ftruncateSync,
  existsSync,
  writeFileSync,
} from 'node:fs';
import { ensureDir, writeFileAtomic } from '../core/fsutil.js';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { canonical, hmac, sha256 } from '../core/canonical.js';
import { OpdError } from '../core/errors.js';
import { ChainWalker, GENESIS, isBreak, type AuditEntry } from './walk.js';

export { GENESIS, bodyOf, type AuditEntry } from './walk.js';

export interface Head {
  seq: number;
  hash: string;
  /** run id of a run that started and has not ended (a crash leaves it set) */
  open_run?: string;
  /**
   * Write-ahead marker: a batch of entries up to this seq is being written. A crash between the
   * write and the head update leaves the log ahead of the head by at most that much; recovery
   * accepts exactly that (sealed with the key like the rest of the head).
   */
  pending?: number;
  mac?: string;
}

export function headPath(log: string): string {
  return log + '.head';
}

export function readKey(keyFile: string | undefined): Buffer | undefined {
  if (!keyFile) return undefined;
  try {
    const k = readFileSync(keyFile);
    return k.length ? k : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OpdError('permission', `cannot read audit key ${keyFile}: ${(err as Error).message}`, {
      hint: 'run as root or give --audit-key',
    });
  }
}

export function sealHead(h: Omit<Head, 'mac'>, key: Buffer | undefined): Head {
  const base: Head = {
    seq: h.seq,
    hash: h.hash,
    ...(h.open_run ? { open_run: h.open_run } : {}),
    ...(h.pending !== undefined ? { pending: h.pending } : {}),
  };
  return key ? { ...base, mac: hmac(key, canonical(base)) } : base;
}

export function readHead(log: string): Head | undefined {
  try {
    return JSON.parse(readFileSync(headPath(log), 'utf8')) as Head;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { seq: -1, hash: 'unreadable' };
  }
}

/** Serialize an entry: canonical JSON of the body, then the hash as the last member. */
/** `fields` and the chain's own members as one object whose keys are in sorted order. */
function sortedBody(fields: Record<string, unknown>, own: Record<string, unknown>): Omit<AuditEntry, 'hash'> {
  const keys = Object.keys(fields).concat(Object.keys(own)).sort();
  const body: Record<string, unknown> = {};
  for (const k of keys) body[k] = k in own ? own[k] : fields[k];
  return body as Omit<AuditEntry, 'hash'>;
}

export function serialize(body: Omit<AuditEntry, 'hash'>): { line: string; hash: string } {
  const text = canonical(body);
  const hash = sha256(body.prev + text);
  return { line: text.slice(0, -1) + `,"hash":"${hash}"}`, hash };
}

/** Do the entries after head.seq chain on from head.hash to the end of the log? (recovery only) */
function chainContinues(path: string, head: Head): boolean {
  const walk = new ChainWalker(head.seq, head.hash);
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    if (!walk.entries) {
      // skip the entries up to the head
      const seq = seqOf(line);
      if (seq === undefined) return false;
      if (seq !== head.seq + 1) continue;
    }
    if (isBreak(walk.next(line))) return false;
  }
  return walk.entries > 0;
}

function seqOf(line: string): number | undefined {
  try {
    return (JSON.parse(line) as AuditEntry).seq;
  } catch {
    return undefined;
  }
}

function atomicWrite(path: string, data: string): void {
  writeFileAtomic(path, data, { mode: 0o600 });
}

export interface RecoveryReport {
  tornBytes?: number;
  tornSavedAs?: string;
  sealedUnsealed?: boolean;
  interruptedRun?: string;
}

/**
 * An open audit log. Open it only while holding the lock (src/audit/lock.ts).
 * Each append is written and fsync'd before the call returns; then the head moves.
 */
export class AuditLog {
  private fd: number;
  private seq: number;
  private last: string;
  private openRun?: string;
  readonly recovery: RecoveryReport = {};

  private constructor(
    readonly path: string,
    private key: Buffer | undefined,
    fd: number,
    seq: number,
    last: string,
    openRun?: string,
  ) {
    this.fd = fd;
    this.seq = seq;
    this.last = last;
    this.openRun = openRun;
  }

  static open(path: string, key?: Buffer): AuditLog {
    try {
      ensureDir(dirname(path));
    } catch (err) {
      throw new OpdError('permission', `cannot create ${dirname(path)}: ${(err as Error).message}`, {
        hint: 'run as root, or give --audit-log PATH in a directory you may write',
      });
    }
    let fd: number;
    try {
      fd = openSync(path, 'a+', 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new OpdError(
        code === 'EACCES' || code === 'EROFS' ? 'permission' : 'backend-failed',
        `cannot open audit log ${path}: ${(err as Error).message}`,
        {
          hint: 'run as root, or give --audit-log PATH in a directory you may write',
        },
      );
    }
    const size = statSync(path).size;
    const recovery: RecoveryReport = {};
    // 1. a torn last line (crash during an append) is kept aside and cut off, never dropped silently
    let tail = '';
    if (size > 0) {
      const n = Math.min(size, 1 << 20);
      const buf = Buffer.alloc(n);
      readSync(fd, buf, 0, n, size - n);
      tail = buf.toString('utf8');
      if (!tail.endsWith('\n')) {
        const cut = tail.lastIndexOf('\n');
        const keepBytes = cut < 0 ? size - n : size - n + Buffer.byteLength(tail.slice(0, cut + 1));
        if (cut < 0 && n < size)
          throw new OpdError('audit-broken', `${path}: last line is longer than 1 MiB and unterminated`, {
            hint: 'inspect the log by hand; run `opd audit verify`',
          });
        const torn = readFileSync(path).subarray(keepBytes);
        const saved = `${path}.torn-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        writeFileSync(saved, torn, { mode: 0o600 });
        ftruncateSync(fd, keepBytes);
        fsyncSync(fd);
        recovery.tornBytes = torn.length;
        recovery.tornSavedAs = saved;
        tail = cut < 0 ? '' : tail.slice(0, cut + 1);
      }
    }
    // 2. the last whole entry decides where the chain continues; the head must agree
    const lines = tail.split('\n').filter(Boolean);
    const lastLine = lines[lines.length - 1];
    let seq = 0;
    let last = GENESIS;
    if (lastLine) {
      let e: AuditEntry;
      try {
        e = JSON.parse(lastLine) as AuditEntry;
      } catch {
        throw new OpdError('audit-broken', `${path}: last entry is not JSON`, {
          hint: 'run `opd audit verify` to find the first broken entry',
        });
      }
      seq = e.seq;
      last = e.hash;
    }
    const head = existsSync(headPath(path)) ? readHead(path) : undefined;
    if (head && key && head.mac !== sealHead(head, key).mac)
      throw new OpdError('audit-broken', `${headPath(path)}: head seal does not match the key`, {
        hint: 'the head or the log was rewritten; run `opd audit verify`',
      });
    if (head && !(head.seq === seq && head.hash === last)) {
      // the one legitimate mismatch: a crash between writing a batch and moving the head. The
      // head's sealed `pending` bounds it, and the chain must continue from the head's hash.
      const prevOfLast = lastLine ? (JSON.parse(lastLine) as AuditEntry).prev : undefined;
      if (head.seq === seq - 1 && head.hash === prevOfLast) recovery.sealedUnsealed = true;
      else if (head.pending !== undefined && seq > head.seq && seq <= head.pending && chainContinues(path, head))
        recovery.sealedUnsealed = true;
      else
        throw new OpdError('audit-broken', `${path}: log ends at seq ${seq} but its head says seq ${head.seq}`, {
          hint: 'the log was truncated or rewritten; run `opd audit verify` and keep the file for inspection',
        });
    }
    if (!head && size > 0 && seq > 0) {
      throw new OpdError('audit-broken', `${headPath(path)} is missing for a non-empty log`, {
        hint: 'restore the head file, or run `opd audit verify`',
      });
    }
    // the open run: the head's, unless entries beyond the head landed before a crash (the head is
    // moved after the write): then those entries decide (a run.start among them is still open)
    let openRun = head?.open_run;
    if (recovery.sealedUnsealed && head) {
      const parse = (l: string): AuditEntry | undefined => {
        try {
          return JSON.parse(l) as AuditEntry;
        } catch {
          return undefined; // the first line of a tail read from the middle of the file
        }
      };
      let entries = lines.map(parse).filter((e): e is AuditEntry => !!e);
      if (!entries.length || entries[0].seq > head.seq + 1)
        entries = readFileSync(path, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map(parse)
          .filter((e): e is AuditEntry => !!e);
      for (const e of entries) {
        if (e.seq <= head.seq) continue;
        if (e.type === 'run.start') openRun = e.run;
        else if (e.type === 'run.end' || e.type === 'run.interrupted') openRun = undefined;
      }
    }
    const log = new AuditLog(path, key, fd, seq, last, openRun);
    Object.assign(log.recovery, recovery);
    return log;
  }

  /**
   * Refuse to start a run the audit trail could not record: a full disk found before
   * anything is applied leaves the host unchanged.
   */
  ensureSpace(changes: number): void {
    const need = 64 * 1024 + changes * 4096;
    let free: number;
    try {
      const st = statfsSync(dirname(this.path));
      free = Number(st.bavail) * Number(st.bsize);
    } catch {
      return;
    }
    if (free < need)
      throw new OpdError(
        'io-error',
        `not enough free space for the audit trail in ${dirname(this.path)}: ${free} bytes free, ${need} needed for ${changes} changes`,
        {
          hint: 'free space on that filesystem or move the trail with --audit-log; nothing was applied',
        },
      );
  }

  /** The run that was open when the previous writer died, if any. */
  get interruptedRun(): string | undefined {
    return this.openRun;
  }

  get lastSeq(): number {
    return this.seq;
  }

  append(run: string, type: string, fields: Record<string, unknown>): AuditEntry {
    return this.appendMany([{ run, type, fields }])[0];
  }

  /**
   * Append several entries with one write and one fsync, then move the head once. Entries of
   * one apply wave go together: the backend applied them as one transaction anyway.
   */
  appendMany(items: { run: string; type: string; fields: Record<string, unknown> }[]): AuditEntry[] {
    if (!items.length) return [];
    const out: AuditEntry[] = [];
    const lines: string[] = [];
    let seq = this.seq;
    let last = this.last;
    let openRun = this.openRun;
    for (const { run, type, fields } of items) {
      // the body's keys in canonical (sorted) order, so that canonical() writes it without a copy
      const body = sortedBody(fields, { seq: seq + 1, ts: new Date().toISOString(), run, type, prev: last });
      const { line, hash } = serialize(body);
      lines.push(line + '\n');
      seq++;
      last = hash;
      if (type === 'run.start') openRun = run;
      if (type === 'run.end' || type === 'run.interrupted') openRun = undefined;
      // the entry returned is the body itself with its hash last (no second copy of 10,000 entries)
      out.push(Object.assign(body, { hash }) as AuditEntry);
    }
    const data = Buffer.from(lines.join(''));
    // write-ahead: the head says a batch up to `seq` is on its way (see Head.pending)
    this.writeHead(seq);
    let off = 0;
    try {
      while (off < data.length) off += writeSync(this.fd, data, off);
      fsyncSync(this.fd);
    } catch (err) {
      // never leave a partial line behind us
      try {
        const size = statSync(this.path).size;
        ftruncateSync(this.fd, size - off);
      } catch {
        /* the next open cuts it aside */
      }
      throw new OpdError('io-error', `cannot write the audit log ${this.path}: ${(err as Error).message}`, {
        hint:
          (err as NodeJS.ErrnoException).code === 'ENOSPC'
            ? 'the disk holding the audit log is full: free space, then rerun'
            : 'check the audit log path and its disk',
      });
    }
    this.seq = seq;
    this.last = last;
    this.openRun = openRun;
    this.writeHead();
    return out;
  }

  private writeHead(pending?: number): void {
    atomicWrite(
      headPath(this.path),
      JSON.stringify(sealHead({ seq: this.seq, hash: this.last, open_run: this.openRun, pending }, this.key)) + '\n',
    );
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* closed */
    }
  }
}

export function newRunId(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '') + '-' + randomBytes(4).toString('hex');
}
