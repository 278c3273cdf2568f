/**
 * Recovery: what a run that never wrote its run.end (killed, aborted by a second signal, a power
 * loss) did to the host. Under the lock, before anything is planned, the next writer (CLI,
 * daemon, boot unit) reads the resources of the changes its intents announced without an outcome
 * and records one `recovered` entry each: `applied`, `not applied`, `partial` (with the fields
 * that differ) or `unknown` (the backend could not be read, or the change has no state to
 * compare: a restart). Then it removes opd's own leftovers in the directories the run noted
 * (temp files of atomic writes) and records those too, and closes the run with `run.interrupted`.
 */
import type { Operation } from 'fast-json-patch';
import type { AuditLog } from '../audit/chain.js';
import { newRunId } from '../audit/chain.js';
import { runEntries } from '../audit/tail.js';
import type { AuditEntry } from '../audit/walk.js';
import { removeLeftovers } from '../core/apply.js';
import { tempLeftovers } from '../core/hostfs.js';
import { canonical } from '../core/canonical.js';
import { isObj, project } from '../core/diff.js';
import { pointerToPath } from '../core/document.js';
import type { EngineOptions, Prepared } from '../core/engine.js';
import { toOpdError } from '../core/errors.js';
import type { Obj, Plugin } from '../core/plugin.js';
import type { Redactor } from '../core/secrets.js';
import { journalPath, readJournal, removeJournal } from './journal.js';

/** One change an intent announced (`resource` only where it is not the address itself). */
export interface IntentItem {
  address: string;
  resource?: string;
  action: string;
  ops: Operation[];
}

export interface PendingChange extends IntentItem {
  resource: string;
  kind: 'change' | 'rollback';
}

export type Found = 'applied' | 'not applied' | 'partial' | 'unknown';

/** The changes a run's intents announced that have no outcome entry (change/rollback) after them. */
export function pendingIntents(entries: AuditEntry[]): PendingChange[] {
  const key = (kind: string, address: string) => kind + '\0' + address;
  const outcomes = new Map<string, number>();
  for (const e of entries)
    if ((e.type === 'change' || e.type === 'rollback') && typeof e.address === 'string') {
      const k = key(e.type, e.address);
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    }
  const out: PendingChange[] = [];
  for (const e of entries) {
    if (e.type !== 'intent' || !Array.isArray(e.changes)) continue;
    const kind = e.kind === 'rollback' ? 'rollback' : 'change';
    for (const it of e.changes as IntentItem[]) {
      const k = key(kind, it.address);
      const n = outcomes.get(k) ?? 0;
      if (n > 0) outcomes.set(k, n - 1);
      else out.push({ ...it, resource: it.resource ?? it.address, kind });
    }
  }
  return out;
}

function at(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const seg of path) {
    if (Array.isArray(cur)) cur = cur[Number(seg)];
    else if (isObj(cur) && Object.hasOwn(cur, seg)) cur = cur[seg];
    else return undefined;
  }
  return cur;
}

function setAt(root: Obj, path: string[], value: unknown): void {
  let cur = root;
  for (const seg of path.slice(0, -1)) {
    const next = Object.hasOwn(cur, seg) ? cur[seg] : undefined;
    if (!isObj(next))
      Object.defineProperty(cur, seg, { value: {}, enumerable: true, writable: true, configurable: true });
    cur = cur[seg] as Obj;
  }
  const last = path[path.length - 1];
  Object.defineProperty(cur, last, {
    value: structuredClone(value),
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

const isAbsent = (v: unknown) => v === undefined || (isObj(v) && v.state === 'absent');

/**
 * What the host holds for one change's operations: each op holds or not. `current` is the
 * resource as read now (redacted as the ops are; undefined when it does not exist).
 */
export function judge(current: unknown, ops: Operation[]): { found: Found; differing: string[] } {
  if (!ops.length) return { found: 'unknown', differing: [] };
  const differing: string[] = [];
  let holding = 0;
  for (const op of ops) {
    const path = op.path === '' ? [] : pointerToPath(op.path);
    const here = path.length ? (current === undefined ? undefined : at(current, path)) : current;
    let holds: boolean;
    if (op.op === 'remove') holds = isAbsent(here);
    else if (op.op === 'add' || op.op === 'replace')
      holds = !isAbsent(here) && canonical(project(here, op.value)) === canonical(op.value);
    else return { found: 'unknown', differing: [] };
    if (holds) holding++;
    else differing.push(op.path || '/');
  }
  if (!differing.length) return { found: 'applied', differing };
  if (!holding) return { found: 'not applied', differing };
  return { found: 'partial', differing };
}

/** The desired section that makes a plugin read exactly these resources (and the fields the ops name). */
function sectionFor(plugin: string, items: PendingChange[]): Obj {
  const section: Obj = {};
  for (const it of items) {
    const [, collection] = it.resource.split('/');
    const name = it.resource.slice(plugin.length + collection.length + 2);
    if (!isObj(section[collection])) section[collection] = {};
    const coll = section[collection] as Obj;
    if (!Object.hasOwn(coll, name)) setAt(coll, [name], {});
    const spec = coll[name] as Obj;
    for (const op of it.ops) {
      const path = op.path === '' ? [] : pointerToPath(op.path);
      if (op.op === 'remove') {
        if (!path.length) {
          if (!Object.keys(spec).length) spec.state = 'absent';
        } else if (at(spec, path) === undefined) setAt(spec, path, { state: 'absent' });
      } else if ((op.op === 'add' || op.op === 'replace') && 'value' in op) {
        if (!path.length && isObj(op.value)) for (const [k, v] of Object.entries(op.value)) setAt(spec, [k], v);
        else if (path.length) setAt(spec, path, op.value);
      }
    }
  }
  return section;
}

export interface RecoveryOptions extends Pick<EngineOptions, 'settings' | 'log'> {
  auditLog: string;
}

export interface RecoveryResult {
  /** one line each for the operator */
  lines: string[];
  counts: Record<Found, number>;
  leftovers: string[];
}

async function pluginOf(prep: Prepared, name: string): Promise<Plugin | undefined> {
  const have = prep.plugins.get(name);
  if (have) return have;
  if (!prep.registry?.names.includes(name)) return undefined;
  return (await prep.registry.loadFor([name])).get(name);
}

/**
 * Recover what a dead writer left: the pending intents of `interrupted` (read from the host,
 * recorded as `recovered`), the leftovers in the directories its temp-file journal names, and
 * `run.interrupted` closing the run. One append (one fsync) for all of it.
 */
export async function recover(
  prep: Prepared,
  o: RecoveryOptions,
  audit: AuditLog,
  interrupted: string | undefined,
  redact: Redactor,
): Promise<RecoveryResult> {
  const counts: Record<Found, number> = { applied: 0, 'not applied': 0, partial: 0, unknown: 0 };
  const journal = readJournal(journalPath(o.auditLog));
  const result: RecoveryResult = { lines: [], counts, leftovers: [] };
  if (!interrupted && !journal) return result;
  const run = interrupted ?? journal?.runs[0] ?? newRunId();
  const entries: { run: string; type: string; fields: Record<string, unknown> }[] = [];
  const pending = interrupted ? pendingIntents(runEntries(audit.path, interrupted)) : [];
  // 1. read the resources of the changes announced without an outcome, plugin by plugin
  const byPlugin = new Map<string, PendingChange[]>();
  for (const p of pending) {
    const name = p.resource.split('/')[0];
    byPlugin.set(name, [...(byPlugin.get(name) ?? []), p]);
  }
  for (const [name, items] of [...byPlugin].sort(([a], [b]) => (a < b ? -1 : 1))) {
    let current: Obj | undefined;
    let error: string | undefined;
    try {
      const plugin = await pluginOf(prep, name);
      if (!plugin) throw new Error(`no plugin ${name} to read it with`);
      const section = sectionFor(name, items);
      current = (await plugin.read(
        { settings: o.settings, log: o.log, document: { [name]: section } },
        section,
      )) as Obj;
    } catch (err) {
      error = toOpdError(err).message;
    }
    for (const it of items) {
      const [, collection] = it.resource.split('/');
      const rname = it.resource.slice(name.length + collection.length + 2);
      let found: Found = 'unknown';
      let differing: string[] = [];
      if (current) {
        const coll = current[collection];
        const raw = isObj(coll) && Object.hasOwn(coll, rname) ? coll[rname] : undefined;
        const exists = raw !== undefined && !(isObj(raw) && raw.state === 'absent');
        ({ found, differing } = judge(exists ? redact.resource(name, collection, raw) : undefined, it.ops));
      }
      counts[found]++;
      entries.push({
        run,
        type: 'recovered',
        fields: {
          address: it.address,
          resource: it.resource,
          action: it.action,
          kind: it.kind,
          found,
          ...(found === 'partial' ? { differing } : {}),
          ...(found === 'unknown'
            ? {
                why: error ?? (it.ops.length ? 'the host could not be compared' : 'the change has no state to compare'),
              }
            : {}),
        },
      });
    }
  }
  // 2. opd's own leftovers where the dead run created temp files: on the record first, then
  // removed (through the doors); a kill in between leaves the journal, and the next run again
  const found = (journal?.dirs ?? []).map((d) => ({ root: d.root, paths: tempLeftovers(d.dir) }));
  result.leftovers = found.flatMap((f) => f.paths);
  for (const path of result.leftovers)
    entries.push({ run, type: 'recovered', fields: { leftover: path, found: 'temp file', removed: true } });
  if (interrupted)
    entries.push({
      run,
      type: 'run.interrupted',
      fields: {
        reason: 'the run ended without run.end (killed, aborted or a power loss)',
        recovered: { ...counts, leftovers: result.leftovers.length },
      },
    });
  audit.appendMany(entries);
  for (const f of found) removeLeftovers(o.settings, o.log, f.root, f.paths);
  removeJournal(journalPath(o.auditLog));
  if (interrupted) {
    const n = pending.length;
    const parts = (Object.entries(counts) as [Found, number][]).filter(([, k]) => k).map(([f, k]) => `${k} ${f}`);
    result.lines.push(
      `run ${interrupted} was interrupted; ${n ? `its ${n} change${n === 1 ? '' : 's'} in flight, read from the host: ${parts.join(', ')} (recorded as recovered)` : 'it had no change in flight (every change it began is on the record)'}`,
    );
  }
  if (result.leftovers.length)
    result.lines.push(
      `removed ${result.leftovers.length} temp file${result.leftovers.length === 1 ? '' : 's'} a killed run left (${result.leftovers[0]}${result.leftovers.length > 1 ? ', …' : ''})`,
    );
  return result;
}
