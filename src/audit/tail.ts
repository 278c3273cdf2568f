/**
 * Reading the end of the audit trail backwards: the entries of the last run (the one a dead
 * writer left open), without reading a trail of gigabytes from its start.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { AuditEntry } from './walk.js';

const CHUNK = 1 << 20;

/**
 * The entries of run `run`, oldest first, read backwards from the end of the log until its
 * `run.start` (or the start of the file). Lines that are not JSON (a torn tail) are skipped:
 * the log is opened (and a torn line cut aside) before this is called.
 */
export function runEntries(path: string, run: string): AuditEntry[] {
  const fd = openSync(path, 'r');
  const needle = Buffer.from(`"run":${JSON.stringify(run)}`);
  const out: AuditEntry[] = [];
  try {
    let pos = fstatSync(fd).size;
    let carry: Buffer = Buffer.alloc(0);
    for (;;) {
      const n = Math.min(CHUNK, pos);
      const buf = Buffer.alloc(n + carry.length);
      if (n) readSync(fd, buf, 0, n, pos - n);
      carry.copy(buf, n);
      pos -= n;
      // the lines wholly inside buf: all but the first piece, unless the file starts here
      let end = buf.length;
      // (lastIndexOf with a negative offset would count from the end: none before offset 0)
      const prevNl = () => (end > 0 ? buf.lastIndexOf(10, end - 1) : -1);
      for (let nl = prevNl(); ; nl = prevNl()) {
        const start = nl < 0 ? 0 : nl + 1;
        if (nl < 0 && pos > 0) {
          carry = Buffer.from(buf.subarray(0, end));
          break;
        }
        const line = buf.subarray(start, end);
        end = nl < 0 ? 0 : nl;
        if (line.length && line.includes(needle)) {
          let e: AuditEntry | undefined;
          try {
            e = JSON.parse(line.toString('utf8')) as AuditEntry;
          } catch {
            e = undefined;
          }
          if (e && e.run === run) {
            out.push(e);
            if (e.type === 'run.start') return out.reverse();
          }
        }
        if (nl < 0) return out.reverse();
      }
    }
  } finally {
    closeSync(fd);
  }
}
