/**
 * Who changed OVS outside opd: every OVSDB transaction of ovs-vsctl carries a comment naming its
 * command line and the process that ran it ("ovs-vsctl (invoked by bash): ovs-vsctl del-port br0
 * p0"), and ovsdb-server keeps the comment and the commit time (`_comment`, `_date`) in its
 * database file, a log of transactions. The file is found through the ovsdb-server process that
 * serves the endpoint's socket (/proc/PID/cmdline; else beside the socket or in /etc/openvswitch,
 * when the server runs in another pid namespace), and its tail is read; opd's own transactions
 * (comment "opd: …") are skipped. Limits: a database on another host (tcp:), or in another pid
 * namespace and kept elsewhere, cannot be read; a clustered database keeps no comments where opd
 * reads them; a client other than ovs-vsctl may send no comment; the comment names the parent by its argv[0] (for a
 * script, its interpreter), never a pid.
 */
import { closeSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Attribution } from '../../core/plugin.js';

/** How much of the database file's end is read (a transaction of 10,000 ports is ~3 MB). */
const TAIL_BYTES = 4 << 20;

/** The database file of the ovsdb-server process serving `sock` (a unix socket path), or why not. */
export function databaseFileOf(sock: string): { file: string } | { reason: string } {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return { reason: '/proc cannot be read' };
  }
  for (const pid of pids) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue; // gone, or not ours to read
    }
    if (!argv.length || !/(^|\/)ovsdb-server$/.test(argv[0])) continue;
    const serves = argv.some(
      (a, i) => a === `--remote=punix:${sock}` || (a === '--remote' && argv[i + 1] === `punix:${sock}`),
    );
    if (!serves) continue;
    const db = argv.slice(1).find((a) => !a.startsWith('-'));
    if (!db) return { reason: `ovsdb-server ${pid} serves ${sock} but names no database file` };
    if (isAbsolute(db)) return { file: db };
    try {
      return { file: resolve(readlinkSync(`/proc/${pid}/cwd`), db) };
    } catch {
      return { reason: `the working directory of ovsdb-server ${pid} cannot be read` };
    }
  }
  return { reason: `no ovsdb-server process serving ${sock} is visible from here (another pid namespace?)` };
}

interface Txn {
  _date?: number;
  _comment?: string;
}

/** The transactions at the end of a standalone database file (the first, partial line skipped). */
export function tailTransactions(file: string): Txn[] | { reason: string } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    return { reason: `the database file ${file} cannot be read: ${(err as Error).message}` };
  }
  try {
    const head = Buffer.alloc(13);
    readSync(fd, head, 0, 13, 0);
    if (head.toString('latin1').startsWith('OVSDB CLUSTER'))
      return { reason: 'a clustered database: its log is not read for transaction comments' };
    const size = statSync(file).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, start + off);
      if (!n) break;
      off += n;
    }
    const out: Txn[] = [];
    for (const line of buf.subarray(0, off).toString('utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const t = JSON.parse(line) as Txn;
        if (typeof t._date === 'number') out.push(t);
      } catch {
        // the first line of the tail (cut) or a record being written
      }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Whether `file` is an OVSDB database file (standalone or clustered: the latter says why it is not read). */
function isStandaloneDb(file: string): boolean {
  try {
    const fd = openSync(file, 'r');
    try {
      const head = Buffer.alloc(5);
      readSync(fd, head, 0, 5, 0);
      return head.toString('latin1') === 'OVSDB';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** "ovs-vsctl (invoked by bash): ovs-vsctl --db=… del-port br0 p0" → the actor. */
export function actorOf(comment: string): NonNullable<Attribution['actor']> {
  const m = /^(\S+) \(invoked by (.+?)\): ([\s\S]*)$/.exec(comment);
  return m ? { command: m[3], parent: m[2] } : { command: comment };
}

/** The last transaction not made by opd committed at or after `since` (epoch ms), as an attribution. */
export function attributeFromLog(endpoint: string, since: number): Attribution {
  if (!endpoint.startsWith('unix:'))
    return {
      source: 'unknown',
      reason: `the database is reached over ${endpoint.split(':')[0]}: its file is not on this host`,
    };
  const sock = endpoint.slice('unix:'.length);
  let where = databaseFileOf(sock);
  // the server may run in another pid namespace (opd under a unit with its own): its database
  // file where OVS keeps it, beside the socket (ovs-ctl's --db-sock layouts, test sandboxes) or
  // in /etc/openvswitch (Debian's openvswitch-switch)
  if ('reason' in where) {
    const file = [join(dirname(sock), 'conf.db'), '/etc/openvswitch/conf.db'].find(isStandaloneDb);
    if (file) where = { file };
  }
  if ('reason' in where) return { source: 'unknown', reason: where.reason };
  const txns = tailTransactions(where.file);
  if (!Array.isArray(txns)) return { source: 'unknown', reason: txns.reason };
  // a second of slack: the daemon's clock reading and the server's commit time
  const foreign = txns.filter((t) => t._date! >= since - 1000 && !(t._comment ?? '').startsWith('opd'));
  const last = foreign.at(-1);
  if (!last)
    return {
      source: 'unknown',
      reason: `no transaction but opd's in the database log since ${new Date(since).toISOString()}`,
    };
  const at = new Date(last._date!).toISOString();
  if (!last._comment)
    return { source: 'unknown', at, reason: 'the transaction carries no comment (a client other than ovs-vsctl)' };
  return { source: 'ovsdb transaction comment', actor: actorOf(last._comment), at };
}
