/**
 * Confirm or revert (`opd apply FILE --confirm SECONDS`, `opd confirm`), as nmstate's
 * checkpoints and Junos' `commit confirmed`: after a successful run, a detached keeper process
 * (its own session, so the invoking shell or SSH session dying does not reach it) waits until
 * the deadline and then reverts every resource the run changed to the state read at the start
 * of the run — unless `opd confirm` came first.
 *
 * State lives beside the audit trail, in `<audit dir>/confirm/` (0700):
 *   <run>.pending.json   written by the apply (0600: the pre-state and the parameters' values
 *                        may hold secrets); it exists only while the run waits
 *   <run>.pid            the keeper's pidfile
 *   <run>.confirmed.json `opd confirm` renamed the pending file (atomic: exactly one of
 *   <run>.reverting.json  the keeper renamed it at the deadline       confirm / revert wins)
 *                        — and then replaced it at once by a small marker (run, file, state,
 *                        when, by whom): the pre-state and the secrets do not outlive the wait
 *   <run>.reverted.json  the revert finished: a marker with its outcome (the reverting file,
 *                        which held the pre-state, is removed)
 * The audit trail gets `confirm` entries: state applied (with the deadline), then confirmed
 * or reverted (after the revert's own `rollback` change entries).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, watch, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { parseText } from '../core/document.js';
import { paramsInfo } from '../core/params.js';
import { prepareLoaded, type Computed, type Prepared } from '../core/engine.js';
import { OpdError } from '../core/errors.js';
import { fingerprint } from '../core/canonical.js';
import type { Settings } from '../core/plugin.js';
import type { ChangeOutcome } from '../core/apply.js';
import type { PluginRegistry } from '../core/registry.js';
import { countOutcomes } from '../core/report.js';
import { revertResources, type PreState } from './rollback.js';
import { secretKey } from '../audit/key.js';
import { AuditLog, readKey } from '../audit/chain.js';
import { acquireLock } from '../audit/lock.js';
import { spawnDetached } from '../exec.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { TUNABLES } from '../core/tunables.js';

export interface PendingConfirm {
  run: string;
  file: string;
  /** the document text the run applied (the revert plans with it even if the file changes) */
  text: string;
  deadline: number;
  settings: Settings;
  audit_log: string;
  audit_key?: string;
  pre: PreState[];
  applied_by: { pid: number; host: string };
  /** the parameters' values of the run (so that the keeper resolves the document as the run did) */
  params?: Record<string, unknown>;
}

/** What stays of a confirmed run: no pre-state, no parameter values. */
export interface ConfirmMarker {
  run: string;
  file: string;
  state: 'confirmed';
  deadline: string;
  at: string;
  by: { pid: number; host: string };
}

/** Whether the keeper of a pending run still runs (it may not after a reboot or a kill -9). */
export function keeperAlive(auditLog: string, run: string): boolean {
  try {
    const pid = Number(readFileSync(p(confirmDir(auditLog), run, 'pid'), 'utf8').trim());
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function pendingFile(auditLog: string, run: string): string {
  return p(confirmDir(auditLog), run, 'pending.json');
}

export function confirmDir(auditLog: string): string {
  return join(dirname(auditLog), 'confirm');
}

const p = (dir: string, run: string, what: string) => join(dir, `${run}.${what}`);

/** Runs waiting for `opd confirm` (oldest first). */
export function pendingRuns(auditLog: string): PendingConfirm[] {
  const dir = confirmDir(auditLog);
  if (!existsSync(dir)) return [];
  const out: PendingConfirm[] = [];
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.pending.json'))
    .sort()) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as PendingConfirm);
    } catch {
      /* renamed meanwhile */
    }
  }
  return out.sort((a, b) => a.deadline - b.deadline);
}

/**
 * Called by the engine right after the run's run.end (audit open, lock held): record the
 * pending confirmation and start the keeper. Returns the keeper's pid.
 */
export async function startConfirmWait(a: {
  prep: Prepared;
  c: Computed;
  touched: Set<string>;
  run: string;
  seconds: number;
  settings: Settings;
  auditLog: string;
  auditKey?: string;
}): Promise<PendingConfirm & { keeper: number }> {
  const dir = confirmDir(a.auditLog);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pending: PendingConfirm = {
    run: a.run,
    file: a.prep.loaded.file,
    text: a.prep.loaded.text,
    deadline: Date.now() + a.seconds * 1000,
    settings: a.settings,
    audit_log: a.auditLog,
    audit_key: a.auditKey,
    params: { ...paramsInfo(a.prep.loaded).values },
    pre: a.c.diffs
      .filter((d) => a.touched.has(d.address))
      .map((d) => ({
        plugin: d.plugin,
        collection: d.collection,
        name: d.name,
        address: d.address,
        current: d.current,
      })),
    applied_by: { pid: process.pid, host: hostname() },
  };
  const file = p(dir, a.run, 'pending.json');
  writeFileAtomic(file, JSON.stringify(pending) + '\n', { mode: 0o600 });
  const bin = fileURLToPath(new URL('../../bin/opd.js', import.meta.url));
  const keeper = await spawnDetached(process.execPath, [bin, 'confirm', '--keeper', file], {
    logFile: p(dir, a.run, 'log'),
  });
  return { ...pending, keeper };
}

export type ConfirmOutcome = { state: 'confirmed' } | { state: 'reverted'; ok: boolean; detail: string };

/** Wait (as the invoking `opd apply`) until the run is confirmed or reverted. */
export async function waitForOutcome(auditLog: string, run: string, signal?: AbortSignal): Promise<ConfirmOutcome> {
  const dir = confirmDir(auditLog);
  const check = (): ConfirmOutcome | undefined => {
    if (existsSync(p(dir, run, 'confirmed.json'))) return { state: 'confirmed' };
    const f = p(dir, run, 'reverted.json');
    if (existsSync(f)) {
      try {
        const r = JSON.parse(readFileSync(f, 'utf8')) as { ok: boolean; detail: string };
        return { state: 'reverted', ok: r.ok, detail: r.detail };
      } catch {
        return undefined; // being written
      }
    }
    return undefined;
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = () => {
      const r = check();
      if (!r || done) return;
      done = true;
      w.close();
      clearInterval(t);
      resolve(r);
    };
    const w = watch(dir, () => finish());
    // a rename can race the watch's start: look again now and then
    const t = setInterval(finish, 1000);
    signal?.addEventListener('abort', () => {
      done = true;
      w.close();
      clearInterval(t);
      reject(new OpdError('usage', 'stopped waiting'));
    });
    finish();
  });
}

async function appendEntries(
  pending: { audit_log: string; audit_key?: string },
  entries: { run: string; type: string; fields: Record<string, unknown> }[],
): Promise<void> {
  const lock = await acquireLock(pending.audit_log + '.lock', TUNABLES.runLockWaitMs);
  try {
    const audit = AuditLog.open(pending.audit_log, readKey(pending.audit_key));
    try {
      audit.appendMany(entries);
    } finally {
      audit.close();
    }
  } finally {
    lock.release();
  }
}

/** `opd confirm`: confirm every pending run (or one). Returns the runs confirmed. */
export async function confirmRuns(auditLog: string, only?: string): Promise<string[]> {
  const dir = confirmDir(auditLog);
  const done: string[] = [];
  for (const r of pendingRuns(auditLog)) {
    if (only && r.run !== only) continue;
    const confirmed = p(dir, r.run, 'confirmed.json');
    try {
      renameSync(p(dir, r.run, 'pending.json'), confirmed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // the keeper began reverting first
      throw err;
    }
    // the rename decided the race; the pre-state (old secrets) and the parameters go now
    const by = { pid: process.pid, host: hostname() };
    const marker: ConfirmMarker = {
      run: r.run,
      file: r.file,
      state: 'confirmed',
      deadline: new Date(r.deadline).toISOString(),
      at: new Date().toISOString(),
      by,
    };
    writeFileAtomic(confirmed, JSON.stringify(marker) + '\n', { mode: 0o600 });
    await appendEntries(r, [
      {
        run: r.run,
        type: 'confirm',
        fields: {
          state: 'confirmed',
          by,
          deadline: new Date(r.deadline).toISOString(),
        },
      },
    ]);
    done.push(r.run);
  }
  return done;
}

/**
 * The keeper (`opd confirm --keeper FILE`, started detached): wait for the deadline; unless
 * confirmed by then, revert the run's resources to their pre-state under the lock.
 */
export async function keeper(
  registry: PluginRegistry,
  pendingFile: string,
  log: Logger,
  opts: { now?: boolean } = {},
): Promise<number> {
  const pending = JSON.parse(readFileSync(pendingFile, 'utf8')) as PendingConfirm;
  if (opts.now) pending.deadline = Date.now();
  const dir = dirname(pendingFile);
  const pidFile = p(dir, pending.run, 'pid');
  writeFileSync(pidFile, `${process.pid}\n`);
  try {
    // wait for the deadline, or for the pending file to go (confirmed)
    await new Promise<void>((resolve) => {
      const end = () => {
        clearTimeout(t);
        w.close();
        resolve();
      };
      const t = setTimeout(end, Math.max(0, pending.deadline - Date.now()));
      const w = watch(dir, () => {
        if (!existsSync(pendingFile)) end();
      });
    });
    try {
      renameSync(pendingFile, p(dir, pending.run, 'reverting.json'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0; // confirmed
      throw err;
    }
    log.warn({ run: pending.run }, 'no confirmation by the deadline: reverting the run');
    // the document as the run resolved it: its parameters' values (a --var is not here to give)
    const prep = await prepareLoaded(registry, parseText(pending.text, pending.file), pending.settings, {
      vars: Object.entries(pending.params ?? {}).map(([k, v]) => `${k}=${String(v)}`),
      // a pending file written before params were kept: the environment, as before
      env: pending.params ? {} : process.env,
    });
    const redact = prep.redactor.withKey(secretKey(pending.audit_log, pending.audit_key));
    const lock = await acquireLock(pending.audit_log + '.lock', TUNABLES.runLockWaitMs);
    let result: { ok: boolean; detail: string };
    try {
      const audit = AuditLog.open(pending.audit_log, readKey(pending.audit_key));
      try {
        const entries: { run: string; type: string; fields: Record<string, unknown> }[] = [];
        const byAddr = new Map(pending.pre.map((x) => [x.address, x]));
        const onOutcome = (out: ChangeOutcome) => {
          const ch = out.change;
          const pre = byAddr.get(ch.resource);
          entries.push({
            run: pending.run,
            type: 'rollback',
            fields: {
              address: ch.address,
              resource: ch.resource,
              action: ch.action,
              summary: redact.text(ch.summary),
              ops: pre ? redact.ops(pre.plugin, pre.collection, ch.ops ?? []) : [],
              after:
                pre?.current === undefined
                  ? null
                  : fingerprint(redact.resource(pre.plugin, pre.collection, pre.current)),
              result: out.status,
              ...(out.error ? { error: redact.text(out.error.message) } : {}),
              attempts: out.attempts,
            },
          });
        };
        const flush = () => audit.appendMany(entries.splice(0));
        let rb;
        try {
          rb = await revertResources(
            prep,
            { settings: pending.settings, log },
            pending.pre,
            undefined,
            true,
            onOutcome,
            flush,
          );
        } catch (err) {
          flush();
          const e = err instanceof OpdError ? err : new OpdError('backend-failed', (err as Error).message);
          result = { ok: false, detail: redact.text(e.message) };
          audit.append(pending.run, 'confirm', { state: 'reverted', result: 'failed', error: redact.text(e.message) });
          throw e;
        }
        flush();
        const s = countOutcomes(rb.outcomes);
        const ok = s.failed + s.skipped + s.refused === 0 && rb.verification.length === 0;
        result = {
          ok,
          detail: `${s.ok} of ${rb.outcomes.length} changes reverted${rb.verification.length ? `; not restored: ${rb.verification.map((v) => v.address).join(', ')}` : ''}`,
        };
        audit.append(pending.run, 'confirm', {
          state: 'reverted',
          result: ok ? 'ok' : 'failed',
          summary: s,
          not_restored: rb.verification.map((v) => v.address),
          deadline: new Date(pending.deadline).toISOString(),
        });
      } finally {
        audit.close();
      }
    } finally {
      lock.release();
      const f = p(dir, pending.run, 'reverted.json');
      writeFileAtomic(f, JSON.stringify(result! ?? { ok: false, detail: 'the revert failed' }) + '\n', { mode: 0o644 });
      rmSync(p(dir, pending.run, 'reverting.json'), { force: true });
    }
    log.warn({ run: pending.run, ...result }, 'reverted');
    return result.ok ? 0 : 1;
  } finally {
    rmSync(pidFile, { force: true });
  }
}
