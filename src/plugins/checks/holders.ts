/**
 * Who listens on a TCP port, and whether that is the document's own resource: a port check
 * (`tcp_ports_free`) guards a first install, so on a converged host it must not fail because
 * of the very services the document runs. A listening port counts as free for the check when
 * the process holding it
 * - belongs to a systemd unit the document names (its cgroup path contains the unit name) and
 *   does not mark inactive or absent, or
 * - is the PostgreSQL (postgres) or MariaDB/MySQL (mariadbd, mysqld) server the document's
 *   databases section configures, on that section's port (--pg-port, default 5432; 3306).
 * Read-only: /proc/net/tcp{,6} (of the network namespace opd runs in), /proc/<pid>/fd links,
 * /proc/<pid>/cgroup and comm. A holder that cannot be identified (not root) is foreign.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { Obj, Settings } from '../../core/plugin.js';
import { settingOf } from '../../core/manifest.js';
import { PG_PORT } from '../../host/settings.js';

export interface Holder {
  pid: number;
  comm: string;
  units: string[];
}

const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** Socket inodes listening on each port (IPv4 and IPv6). */
export function listeningInodes(): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readText(f).split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '0A') continue;
      const port = parseInt(cols[1].split(':').pop() ?? '', 16);
      if (!Number.isFinite(port)) continue;
      const s = out.get(port) ?? new Set<string>();
      s.add(cols[9]);
      out.set(port, s);
    }
  }
  return out;
}

/** The processes holding these socket inodes (one scan of /proc). */
export function holdersOf(inodes: Set<string>): Holder[] {
  if (!inodes.size) return [];
  const want = new Set([...inodes].map((i) => `socket:[${i}]`));
  const out: Holder[] = [];
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    let hit = false;
    for (const fd of fds) {
      try {
        if (want.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) {
          hit = true;
          break;
        }
      } catch {
        /* closed meanwhile */
      }
    }
    if (!hit) continue;
    const cg = readText(`/proc/${pid}/cgroup`);
    const units = [
      ...new Set(
        cg
          .split('\n')
          .flatMap((l) => (l.split(':').slice(2).join(':') || '').split('/'))
          .filter((s) => /\.(service|scope|socket)$/.test(s)),
      ),
    ];
    out.push({ pid: Number(pid), comm: readText(`/proc/${pid}/comm`).trim(), units });
  }
  return out;
}

/** Whether a holder is one of the document's own resources (see the file comment). */
export function ownedByDocument(
  h: Holder,
  port: number,
  doc: Record<string, Obj>,
  settings: Settings,
): string | undefined {
  const units = isObj(doc.systemd) && isObj(doc.systemd.units) ? doc.systemd.units : {};
  for (const u of h.units) {
    const spec = units[u] ?? units[u.replace(/@[^.]*\./, '@.')];
    if (isObj(spec) && spec.state !== 'absent' && spec.active_state !== 'inactive') return `systemd/units/${u}`;
  }
  const db = isObj(doc.databases) ? doc.databases : {};
  const names = (k: string) => {
    const c = db[k];
    return isObj(c) && Object.keys(c).length > 0;
  };
  const pgPort = Number(settingOf(settings, PG_PORT));
  if ((names('pg_roles') || names('pg_databases')) && ['postgres', 'postmaster'].includes(h.comm) && port === pgPort)
    return 'databases (PostgreSQL)';
  if ((names('mysql_users') || names('mysql_databases')) && ['mariadbd', 'mysqld'].includes(h.comm) && port === 3306)
    return 'databases (MariaDB/MySQL)';
  return undefined;
}

/**
 * The listening ports minus those held only by the document's own resources; `why` gets, per
 * busy port that is not the document's, who holds it (for the failure message).
 */
export function foreignListening(
  listening: Set<number>,
  ports: number[],
  doc: Record<string, Obj> | undefined,
  settings: Settings,
): { busy: Set<number>; holders: Map<number, string> } {
  const busy = new Set(listening);
  const holders = new Map<number, string>();
  const asked = ports.filter((p) => listening.has(p));
  if (!asked.length) return { busy, holders };
  const inodes = listeningInodes();
  for (const port of asked) {
    const hs = holdersOf(inodes.get(port) ?? new Set());
    const own = doc && hs.length > 0 && hs.every((h) => ownedByDocument(h, port, doc, settings) !== undefined);
    if (own) busy.delete(port);
    else if (hs.length)
      holders.set(
        port,
        hs.map((h) => `${h.comm} pid ${h.pid}${h.units.length ? ` in ${h.units.join(', ')}` : ''}`).join('; '),
      );
  }
  return { busy, holders };
}
