/**
 * Walk the chain and name the first broken entry and why. Streams the file in chunks: a
 * byte-level fast pass for the intact case, else the detailed walk (src/audit/walk.ts).
 */
import { openSync, readSync, closeSync, readdirSync, existsSync } from 'node:fs';
import { hash as oneShotHash } from 'node:crypto';
import { basename, dirname } from 'node:path';
import { headPath, readHead, sealHead } from './chain.js';
import { ChainWalker, GENESIS, isBreak } from './walk.js';

export interface VerifyResult {
  ok: boolean;
  entries: number;
  runs: number;
  bytes: number;
  /** first problem: seq (or line) and why */
  broken?: { seq?: number; line: number; reason: string };
  warnings: string[];
  sealed: boolean;
}

const SUFFIX = ',"hash":"'.length + 64 + '"}'.length;
const RUN_START = Buffer.from('"type":"run.start"');

/**
 * Fast pass over raw bytes: each line's hash must equal sha256(expected prev ‖ its body). As the
 * body holds prev and seq, this alone catches edited, deleted, duplicated and reordered entries.
 * Returns undefined at the first doubt; the detailed walk then names the entry and the reason.
 */
function fastWalk(
  path: string,
  target: number,
):
  | { entries: number; runs: number; bytes: number; last: string; lastPrev: string; rest: number; atTarget?: string }
  | undefined {
  const fd = openSync(path, 'r');
  const chunk = Buffer.alloc(16 << 20);
  let scratch = Buffer.alloc(1 << 16);
  scratch.write(GENESIS, 0, 'latin1');
  let carry: Buffer = Buffer.alloc(0);
  let entries = 0,
    runs = 0,
    bytes = 0;
  let last = GENESIS,
    lastPrev = GENESIS;
  let atTarget: string | undefined;
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      bytes += n;
      const data = carry.length ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      let start = 0;
      for (let end = data.indexOf(10, start); end >= 0; end = data.indexOf(10, start)) {
        const bodyLen = end - start - SUFFIX;
        if (
          bodyLen < 1 ||
          data[end - 1] !== 125 ||
          data[end - 2] !== 34 ||
          data.toString('latin1', end - SUFFIX, end - 66) !== ',"hash":"'
        )
          return undefined;
        if (scratch.length < 65 + bodyLen) {
          const bigger = Buffer.alloc(2 * (65 + bodyLen));
          scratch.copy(bigger, 0, 0, 64);
          scratch = bigger;
        }
        data.copy(scratch, 64, start, start + bodyLen);
        scratch[64 + bodyLen] = 125; // the body's closing brace
        const stored = data.toString('latin1', end - 66, end - 2);
        if (oneShotHash('sha256', scratch.subarray(0, 65 + bodyLen)) !== stored) return undefined;
        if (data.subarray(start, end).includes(RUN_START)) runs++;
        lastPrev = last;
        last = stored;
        scratch.write(stored, 0, 'latin1');
        entries++;
        if (entries === target) atTarget = stored;
        start = end + 1;
      }
      carry = Buffer.from(data.subarray(start));
    }
  } finally {
    closeSync(fd);
  }
  return { entries, runs, bytes, last, lastPrev, rest: carry.length, atTarget };
}

export function verifyLog(path: string, key?: Buffer): VerifyResult {
  if (existsSync(path)) {
    const f = fastWalk(path, readHead(path)?.seq ?? -1);
    if (f) {
      const res: VerifyResult = {
        ok: true,
        entries: f.entries,
        runs: f.runs,
        bytes: f.bytes,
        warnings: [],
        sealed: false,
      };
      const done = finish(path, key, res, f.entries, f.last, f.lastPrev, f.rest, f.atTarget);
      if (done.ok) return done;
    }
  }
  return verifySlow(path, key);
}

/** Torn tail, aside-kept lines and the head: shared by both walks. */
function finish(
  path: string,
  key: Buffer | undefined,
  res: VerifyResult,
  seq: number,
  prev: string,
  lastPrev: string,
  restBytes: number,
  hashAtHead?: string,
): VerifyResult {
  let lineNo = seq;
  const fail = (reason: string, s?: number) => {
    res.ok = false;
    res.broken = { seq: s, line: lineNo, reason };
  };
  if (restBytes) {
    res.warnings.push(
      `torn last line of ${restBytes} bytes after seq ${seq} (a crash during an append); the next opd run keeps it aside in ${basename(path)}.torn-*`,
    );
  }
  for (const f of safeList(dirname(path)))
    if (f.startsWith(basename(path) + '.torn-')) res.warnings.push(`torn line kept aside earlier: ${f}`);
  const head = readHead(path);
  if (!head) {
    if (seq > 0) fail(`head file ${headPath(path)} is missing`, seq);
    return res;
  }
  if (key) {
    if (!head.mac) {
      fail('head is not sealed although a key is configured (head rewritten)', head.seq);
      return res;
    }
    if (sealHead(head, key).mac !== head.mac) {
      fail('head seal (HMAC) does not match: the head or the whole chain was rewritten', head.seq);
      return res;
    }
    res.sealed = true;
  } else if (head.mac) res.warnings.push('head is sealed but no key was given (--audit-key): the seal was not checked');
  if (head.seq === seq && head.hash === prev) return res;
  if (head.seq === seq - 1 && head.hash === lastPrev) {
    res.warnings.push(
      `entry ${seq} was written but the head was not yet moved (a crash between the two); the next run seals it`,
    );
    return res;
  }
  if (head.pending !== undefined && seq > head.seq && seq <= head.pending && hashAtHead === head.hash) {
    res.warnings.push(
      `entries ${head.seq + 1}-${seq} were written by a run that died before moving the head (its sealed write-ahead marker allows up to ${head.pending}); the next run seals them`,
    );
    return res;
  }
  lineNo = seq;
  if (head.seq > seq) fail(`log ends at seq ${seq} but the head says ${head.seq} (tail truncated)`, seq);
  else fail(`head (seq ${head.seq}) does not match the log's last entry (seq ${seq}): log or head rewritten`, head.seq);
  return res;
}

/** The detailed walk: parses every entry and names the first broken one and why. */
function verifySlow(path: string, key?: Buffer): VerifyResult {
  const res: VerifyResult = { ok: true, entries: 0, runs: 0, bytes: 0, warnings: [], sealed: false };
  if (!existsSync(path)) {
    const head = readHead(path);
    if (head && head.seq > 0)
      return { ...res, ok: false, broken: { line: 1, reason: `log is missing but its head says seq ${head.seq}` } };
    res.warnings.push(`${path} does not exist yet (no run has been recorded)`);
    return res;
  }
  const fd = openSync(path, 'r');
  const chunk = Buffer.alloc(8 << 20);
  const headSeq = readHead(path)?.seq ?? -1;
  const walk = new ChainWalker();
  let hashAt: string | undefined;
  let rest = '';
  const done = () => Object.assign(res, { entries: walk.entries, runs: walk.runs });
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      res.bytes += n;
      const text = rest + chunk.toString('utf8', 0, n);
      const lines = text.split('\n');
      rest = lines.pop()!;
      for (const l of lines) {
        const r = walk.next(l);
        if (isBreak(r)) {
          done();
          return { ...res, ok: false, broken: { seq: r.seq, line: walk.entries + 1, reason: r.reason } };
        }
        if (r.seq === headSeq) hashAt = r.hash;
      }
    }
  } finally {
    closeSync(fd);
  }
  done();
  return finish(path, key, res, walk.seq, walk.prev, walk.lastPrev, Buffer.byteLength(rest), hashAt);
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
