/**
 * The reconcile loop of `opd daemon`: reconcile at start, then on triggers (plugin watches,
 * polling for plugins without one, the state file changing, SIGHUP, a D-Bus call, a periodic
 * full resync). The first trigger starts a run at once; triggers during a run make the next
 * one (a burst: at most two runs). Each run goes through the core engine (lock, audit trail, verify); drift (a resource that had converged
 * and changed outside opd) is written as `drift` entries before the corrective changes, in a
 * run whose trigger is `drift`. A failing resource is held back with capped exponential
 * backoff, never given up, and never blocks the others.
 */
import { watch as fsWatch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { computePlan, prepareLoaded, type Computed, type Prepared } from '../core/engine.js';
import { loadDocumentOffThread } from '../core/document-worker.js';
import { run as engineRun } from '../run/index.js';
import { secretKey } from '../audit/key.js';
import { planView, planViewJSON, type RunReport } from '../core/report.js';
import type { PluginRegistry } from '../core/registry.js';
import type { Attribution, Disposable, ResourceDiff, Settings } from '../core/plugin.js';
import { fingerprint, sha256 } from '../core/canonical.js';
import { OpdError, toOpdError } from '../core/errors.js';
import { scrub, type Redactor } from '../core/secrets.js';
import { FORMAT_VERSION } from '../core/plan.js';
import { diffFields, resourceContentDiffs } from '../core/content.js';
import type { Notifier } from './notify.js';
import type { VarSources } from '../core/params.js';
import { TUNABLES } from '../core/tunables.js';

export interface DaemonOptions {
  /** the plugins (src/plugins/index.ts): passed in, the daemon does not import them */
  registry: PluginRegistry;
  stateFile: string;
  /** Parameter values from outside the document (--var, --vars, OPD_VAR_*), re-read on every reload. */
  vars?: VarSources;
  settings: Settings;
  log: Logger;
  auditLog: string;
  auditKey?: string;
  allowDestroy: boolean;
  rollback: boolean;
  /** full resync period (ms); 0 = off */
  resyncMs: number;
  /** polling period for plugins without a watch (or all, with watch: false) */
  pollMs: number;
  /** use the plugins' event sources (false: polling only) */
  watch: boolean;
  debounceMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  notifier: Notifier;
}

export type ResourceState = 'converged' | 'failing' | 'pending' | 'unknown';

export interface ResourceStatus {
  address: string;
  state: ResourceState;
  /** fingerprint of the resource when it last matched the document, and of the desired spec then */
  convergedFp?: string | null;
  desiredFp?: string | null;
  lastChangeAt?: string;
  lastOkAt?: string;
  /** the last drift found on it (what changed outside opd): when, and the content diff of its texts */
  lastDrift?: { at: string; diff?: string; diff_note?: string; attribution?: Attribution };
  error?: string;
  failures: number;
  /** epoch ms of the next attempt while backing off */
  nextAttemptAt?: number;
}

export interface RunSummary {
  run?: string;
  status: RunReport['status'] | 'error';
  trigger: string;
  reasons: string[];
  at: string;
  duration_ms: number;
  changes: number;
  drift: string[];
  held: string[];
  outcomes: { address: string; action: string; status: string; error?: string }[];
  error?: string;
  /** plugins whose backend was down: their resources are unknown, the others were reconciled */
  unreachable?: string[];
  /** last sequence number of the audit trail after the run */
  audit_seq?: number;
}

interface Waiter {
  resolve(s: RunSummary): void;
}

/**
 * The fingerprint of a resource's desired spec, kept to tell drift from a new document: of the
 * redacted spec (secrets as keyed hashes), like every fingerprint the daemon keeps.
 */
function desiredFingerprint(d: ResourceDiff, redactor: Redactor): string | null {
  return d.desired === undefined ? null : fingerprint(redactor.resource(d.plugin, d.collection, d.desired));
}

export class Daemon extends EventEmitter {
  prep!: Prepared;
  private fileHash = '';
  docError?: { message: string; at: string };
  readonly resources = new Map<string, ResourceStatus>();
  lastRun?: RunSummary;
  runs = 0;
  driftCount = 0;
  readonly startedAt = new Date();
  readyAt?: Date;
  watching: string[] = [];
  polling: string[] = [];
  globalFailures = 0;
  /** consecutive runs with a plugin whose backend was down (its retry backs off like a failing resource) */
  unreachableRuns = 0;

  private reasons = new Set<string>();
  private force = false;
  private waiters: Waiter[] = [];
  private timer?: NodeJS.Timeout;
  private immediate?: NodeJS.Immediate;
  private retryTimer?: NodeJS.Timeout;
  private intervals: NodeJS.Timeout[] = [];
  private running?: Promise<void>;
  /** A second signal: abort the changes in flight (the process then ends; recovery reads them). */
  private abort = new AbortController();
  /** Stopping (SIGTERM): the current run starts no new change and ends with run.end `interrupted`. */
  private stopping = new AbortController();
  private disposables: Disposable[] = [];
  private fileWatcher?: FSWatcher;
  private fileTimer?: NodeJS.Timeout;
  private stopped = false;
  private sentStatus = '';
  readonly stateFile: string;

  constructor(readonly o: DaemonOptions) {
    super();
    this.stateFile = resolve(o.stateFile);
  }

  /** Accepted-but-unacted fields of the document (op-dbus forms), once per load. */
  private logWarnings(prep: Prepared): void {
    for (const w of prep.warnings)
      this.o.log.warn({ file: prep.loaded.file, line: w.line, col: w.col, pointer: w.pointer, fix: w.fix }, w.message);
  }

  /**
   * Read and check the state document. The parse runs in a worker thread: a big document (up to
   * 32 MB, a million nodes) must not hold the event loop, which serves the watchdog, D-Bus and
   * signals; the checks after it (normalize, schema, semantics) are linear in the document.
   */
  private async prepare(): Promise<Prepared> {
    return prepareLoaded(this.o.registry, await loadDocumentOffThread(this.stateFile), this.o.settings, this.o.vars);
  }

  /** Load the document (invalid at start: throw, exit 65), start watches, reconcile once, READY. */
  async start(beforeReady?: () => Promise<void>): Promise<void> {
    this.prep = await this.prepare();
    this.logWarnings(this.prep);
    this.fileHash = sha256(readFileSync(this.stateFile));
    await this.startWatches();
    this.watchFile();
    await this.runNow(['start'], true);
    if (this.stopped) return; // SIGTERM during the first run
    await beforeReady?.();
    this.readyAt = new Date();
    this.sentStatus = this.statusLine().replace(/last run \d+s ago/, '');
    await this.o.notifier.send({ READY: '1', STATUS: this.statusLine(), MAINPID: String(process.pid) });
    if (this.o.resyncMs > 0) this.intervals.push(setInterval(() => this.trigger('resync'), this.o.resyncMs));
    // plugins without an event source (the list changes with reloads and failed watches)
    if (this.o.pollMs > 0)
      this.intervals.push(setInterval(() => this.polling.length && this.trigger('poll'), this.o.pollMs));
    const wd = this.o.notifier.watchdogMs;
    // the watchdog ping also refreshes STATUS ("last run 2s ago"); without a watchdog every 60 s
    const tick = wd || (this.o.notifier.enabled ? TUNABLES.statusRefreshMs : 0);
    if (tick)
      this.intervals.push(
        setInterval(
          () => void this.o.notifier.send({ ...(wd ? { WATCHDOG: '1' } : {}), STATUS: this.statusLine() }),
          tick,
        ),
      );
  }

  /** Ask for a run; triggers within the debounce window are coalesced into one. */
  trigger(reason: string, force = false): void {
    if (this.stopped) return;
    this.reasons.add(reason);
    if (force) this.force = true;
    this.schedule();
  }

  /** Run as soon as possible (D-Bus Apply, SIGHUP) and resolve with that run's summary. */
  request(reason: string): Promise<RunSummary> {
    return new Promise((resolve) => {
      this.waiters.push({ resolve });
      this.trigger(reason, true);
    });
  }

  /**
   * Start a run for the triggers gathered so far. With no debounce (the default) the first
   * trigger starts a run at once (in the next turn of the event loop, so that triggers raised
   * together make one run); triggers arriving while a run goes on wait for it and make the next
   * one, so a burst is repaired in at most two runs. A debounce (--debounce MS) waits that long
   * after the first trigger instead.
   */
  private schedule(): void {
    if (this.timer || this.immediate || this.running || this.stopped) return;
    const go = () => {
      this.timer = undefined;
      this.immediate = undefined;
      if (this.running || this.stopped) return; // picked up when the current run ends
      const reasons = [...this.reasons].sort();
      const force = this.force;
      this.reasons.clear();
      this.force = false;
      void this.runNow(reasons, force);
    };
    if (this.o.debounceMs > 0) this.timer = setTimeout(go, this.o.debounceMs);
    else this.immediate = setImmediate(go);
  }

  /** One reconcile run. Never throws: failures land in the status and the backoff. */
  private async runNow(reasons: string[], force: boolean): Promise<void> {
    const waiters = this.waiters;
    this.waiters = [];
    const hadError = this.lastRun?.status === 'error' || !!this.lastRun?.unreachable?.length;
    let done!: () => void;
    this.running = new Promise((r) => (done = r));
    const t0 = Date.now();
    let summary: RunSummary;
    try {
      summary = await this.reconcile(reasons, force);
    } catch (err) {
      const e = toOpdError(err);
      this.globalFailures++;
      summary = {
        status: 'error',
        trigger: reasons.join(','),
        reasons,
        at: new Date().toISOString(),
        duration_ms: Date.now() - t0,
        changes: 0,
        drift: [],
        held: [],
        outcomes: [],
        error: scrub(e.message),
      };
      this.o.log.error({ err: e.message, hint: e.hint }, 'reconcile failed');
    }
    this.runs++;
    this.lastRun = summary;
    this.running = undefined;
    done();
    for (const w of waiters) w.resolve(summary);
    if (summary.status !== 'noop' || waiters.length) this.emit('run', summary);
    // every run, noop included (fleet mode publishes status and the audit head after each)
    this.emit('ran', summary);
    if (summary.drift.length) this.emit('drift', summary);
    // STATUS when it says something new (the watchdog tick refreshes "last run Ns ago")
    const line = this.statusLine();
    const core = line.replace(/last run \d+s ago/, '');
    if (this.readyAt && core !== this.sentStatus) {
      this.sentStatus = core;
      void this.o.notifier.send({ STATUS: line });
    }
    // the backend came back after a failed run: its event streams may have ended with it
    this.emit('finished', summary);
    if (hadError && summary.status !== 'error' && !summary.unreachable?.length && !this.stopped)
      await this.restartWatches();
    this.scheduleRetry();
    if (this.reasons.size && !this.stopped) this.schedule();
  }

  private async reconcile(reasons: string[], force: boolean): Promise<RunSummary> {
    const now = Date.now();
    const t0 = now;
    if (force) for (const r of this.resources.values()) r.nextAttemptAt = undefined;
    const held = new Set<string>();
    const hold = (d: ResourceDiff) => {
      const r = this.resources.get(d.address);
      if (d.action !== 'noop' && r?.nextAttemptAt && r.nextAttemptAt > now) {
        held.add(d.address);
        return true;
      }
      return false;
    };
    let drift: ResourceDiff[] = [];
    const prep = this.prep;
    const redactor = prep.redactor.withKey(secretKey(this.o.auditLog, this.o.auditKey));
    const report = await engineRun(prep, {
      settings: this.o.settings,
      log: this.o.log,
      allowDestroy: this.o.allowDestroy,
      rollback: this.o.rollback,
      auditLog: this.o.auditLog,
      auditKey: this.o.auditKey,
      lockWaitMs: TUNABLES.daemonLockWaitMs,
      signal: this.abort.signal,
      stop: this.stopping.signal,
      // a plugin whose backend is down never stops the others' repair
      partial: true,
      hold,
      trigger: (c: Computed) => {
        drift = this.findDrift(c, held, redactor);
        return drift.length ? 'drift' : `daemon:${reasons.join(',')}`;
      },
      beforeApply: async (audit, run) => {
        const by = await this.attribute(drift);
        for (const d of drift) {
          const r = this.resources.get(d.address);
          // the texts that drifted (a hand-edited file): the same diff opd status shows, secrets never
          const content = diffFields(resourceContentDiffs(d, prep.redactor));
          const attribution = by.get(d.plugin)!;
          if (r) r.lastDrift = { at: new Date().toISOString(), ...content, attribution };
          this.emit('attributed', d.address, attribution);
          audit.append(run, 'drift', {
            ...content,
            address: d.address,
            action: d.action,
            attribution,
            // keyed fingerprints of the redacted values, as the engine's change entries
            before: r?.convergedFp ?? null,
            after: d.current === undefined ? null : fingerprint(redactor.resource(d.plugin, d.collection, d.current)),
            ops: redactor.ops(d.plugin, d.collection, d.ops),
            detected_by: reasons,
          });
        }
      },
    });
    this.record(report, held, redactor);
    this.globalFailures = 0;
    const unreachable = report.unreachable.map((u) => u.plugin);
    this.unreachableRuns = unreachable.length ? this.unreachableRuns + 1 : 0;
    if (unreachable.length)
      this.o.log.warn(
        { unreachable, errors: report.unreachable.map((u) => u.error.message) },
        'backend down: its resources are unknown; reconciling the others',
      );
    const driftAddrs = drift.map((d) => d.address);
    this.driftCount += driftAddrs.length;
    if (driftAddrs.length) this.o.log.warn({ drift: driftAddrs, run: report.run }, 'drift detected and corrected');
    if (report.status !== 'noop')
      this.o.log.info(
        { run: report.run, status: report.status, changes: report.plan.changes.length, reasons },
        'run finished',
      );
    return {
      run: report.run,
      status: report.status,
      trigger: driftAddrs.length ? 'drift' : `daemon:${reasons.join(',')}`,
      reasons,
      at: new Date().toISOString(),
      duration_ms: Date.now() - t0,
      changes: report.plan.changes.length,
      drift: driftAddrs,
      held: [...held].sort(),
      outcomes: report.outcomes.map((x) => ({
        address: x.change.address,
        action: x.change.action,
        status: x.status,
        ...(x.error ? { error: scrub(x.error.message) } : {}),
      })),
      ...(unreachable.length ? { unreachable } : {}),
      ...(report.audit ? { audit_seq: report.audit.seq } : {}),
    };
  }

  /** Drift: a resource that had converged for the same desired spec and differs now. */
  /**
   * Who made the drift, per plugin: its backend's record since the resources were last seen
   * converged (Plugin.attribute, at most TUNABLES.attributionTimeoutMs), or unknown and why.
   */
  private async attribute(drift: ResourceDiff[]): Promise<Map<string, Attribution>> {
    const out = new Map<string, Attribution>();
    const byPlugin = new Map<string, ResourceDiff[]>();
    for (const d of drift) byPlugin.set(d.plugin, [...(byPlugin.get(d.plugin) ?? []), d]);
    for (const [name, ds] of byPlugin) {
      const p = this.prep.plugins.get(name);
      const since = Math.min(
        ...ds.map((d) => {
          const ok = this.resources.get(d.address)?.lastOkAt;
          return ok ? Date.parse(ok) : this.startedAt.getTime();
        }),
      );
      if (!p?.attribute) {
        out.set(name, {
          source: 'unknown',
          reason: `the ${name} plugin has no record of who changes its resources (its event source says what changed, not who)`,
        });
        continue;
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        out.set(
          name,
          await Promise.race([
            p.attribute({ settings: this.o.settings, log: this.o.log }, ds, since),
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`no answer in ${TUNABLES.attributionTimeoutMs} ms`)),
                TUNABLES.attributionTimeoutMs,
              );
            }),
          ]),
        );
      } catch (err) {
        out.set(name, { source: 'unknown', reason: `reading who changed it failed: ${toOpdError(err).message}` });
      } finally {
        if (timer) clearTimeout(timer);
      }
    }
    return out;
  }

  private findDrift(c: Computed, held: Set<string>, redactor: Redactor): ResourceDiff[] {
    return c.diffs.filter((d) => {
      if (d.action === 'noop' || held.has(d.address)) return false;
      const r = this.resources.get(d.address);
      return !!r && r.state === 'converged' && r.desiredFp === desiredFingerprint(d, redactor);
    });
  }

  /** Per-resource outcome and backoff from a run report. */
  private record(report: RunReport, held: Set<string>, redactor: Redactor): void {
    const c = report.computed;
    if (!c) return;
    const fp = (d: ResourceDiff, v: unknown) =>
      v === undefined ? null : fingerprint(redactor.resource(d.plugin, d.collection, v));
    const at = new Date().toISOString();
    const seen = new Set<string>();
    const verifyFailed = new Set(report.verification.map((v) => v.address));
    const blocked = report.status === 'blocked';
    for (const d of c.diffs) {
      seen.add(d.address);
      const r: ResourceStatus = this.resources.get(d.address) ?? { address: d.address, state: 'pending', failures: 0 };
      this.resources.set(d.address, r);
      if (held.has(d.address)) continue;
      const desiredFp = desiredFingerprint(d, redactor);
      if (d.action === 'noop') {
        Object.assign(r, {
          state: 'converged',
          convergedFp: fp(d, d.current),
          desiredFp,
          lastOkAt: at,
          failures: 0,
          error: undefined,
          nextAttemptAt: undefined,
        });
        continue;
      }
      const mine = report.outcomes.filter((x) => x.change.resource === d.address);
      const bad = mine.find((x) => x.status !== 'ok');
      if (!blocked && mine.length && !bad && !verifyFailed.has(d.address)) {
        Object.assign(r, {
          state: 'converged',
          convergedFp: fp(d, d.desired),
          desiredFp,
          lastOkAt: at,
          lastChangeAt: at,
          failures: 0,
          error: undefined,
          nextAttemptAt: undefined,
        });
        continue;
      }
      const why = scrub(
        blocked
          ? (report.plan.changes.find((x) => x.blocker)?.blocker ?? 'a precondition failed')
          : (bad?.error?.message ??
              (verifyFailed.has(d.address)
                ? 'verification failed: the host still differs after the change'
                : 'not applied')),
      );
      r.failures++;
      const wait = Math.min(this.o.backoffCapMs, this.o.backoffBaseMs * 2 ** (r.failures - 1));
      Object.assign(r, { state: 'failing', error: why, desiredFp, lastChangeAt: at, nextAttemptAt: Date.now() + wait });
      this.o.log.warn(
        { address: d.address, failures: r.failures, retry_in_s: wait / 1000, error: why },
        'resource failing; backing off',
      );
    }
    for (const u of report.unreachable)
      for (const address of u.resources) {
        seen.add(address);
        const r: ResourceStatus = this.resources.get(address) ?? { address, state: 'unknown', failures: 0 };
        this.resources.set(address, r);
        Object.assign(r, {
          state: 'unknown',
          error: scrub(`${u.plugin} unreachable: ${u.error.message}`),
          nextAttemptAt: undefined,
        });
      }
    for (const k of [...this.resources.keys()]) if (!seen.has(k)) this.resources.delete(k);
  }

  private scheduleRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.stopped) return;
    let next = Infinity;
    for (const r of this.resources.values()) if (r.nextAttemptAt) next = Math.min(next, r.nextAttemptAt);
    if (this.lastRun?.status === 'error')
      next =
        Date.now() + Math.min(this.o.backoffCapMs, this.o.backoffBaseMs * 2 ** Math.max(0, this.globalFailures - 1));
    else if (this.unreachableRuns)
      next = Math.min(
        next,
        Date.now() + Math.min(this.o.backoffCapMs, this.o.backoffBaseMs * 2 ** (this.unreachableRuns - 1)),
      );
    if (next === Infinity) return;
    this.retryTimer = setTimeout(() => this.trigger('retry'), Math.max(0, next - Date.now()) + 5);
  }

  private async startWatches(): Promise<void> {
    this.watching = [];
    this.polling = [];
    for (const [name, p] of [...this.prep.plugins].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!this.o.watch || !p.watch) {
        this.polling.push(name);
        continue;
      }
      if (this.stopped) return;
      try {
        const d = await p.watch(
          { settings: this.o.settings, log: this.o.log, desired: this.prep.doc.plugins[name] },
          (addr) => this.trigger(`watch:${name}${addr ? `:${addr}` : ''}`.slice(0, 200)),
        );
        if (this.stopped)
          await d.dispose(); // SIGTERM while the watch was starting
        else this.disposables.push(d);
        this.watching.push(name);
      } catch (err) {
        this.o.log.warn({ plugin: name, err: toOpdError(err).message }, 'cannot watch; falling back to polling');
        this.polling.push(name);
      }
    }
  }

  private async restartWatches(): Promise<void> {
    await this.stopWatches();
    await this.startWatches();
  }

  private async stopWatches(): Promise<void> {
    const ds = this.disposables;
    this.disposables = [];
    await Promise.all(
      ds.map(async (d) => {
        try {
          await d.dispose();
        } catch {
          /* gone */
        }
      }),
    );
  }

  /** fs.watch on the directory (editors replace the file by rename) + a content hash. */
  private watchFile(): void {
    try {
      this.fileWatcher = fsWatch(dirname(this.stateFile), { persistent: true }, (_ev, name) => {
        if (name && name.toString() !== basename(this.stateFile)) return;
        if (this.fileTimer) clearTimeout(this.fileTimer);
        this.fileTimer = setTimeout(() => void this.reload(false), TUNABLES.stateFileSettleMs);
      });
      this.fileWatcher.on('error', (err) =>
        this.o.log.warn({ err: err.message }, 'state file watch failed; SIGHUP still reloads'),
      );
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'cannot watch the state file; SIGHUP still reloads');
    }
  }

  /**
   * Re-read the state document. An invalid one is rejected (logged, shown in the status) and
   * the last good one stays in force. `forced` (SIGHUP) reloads and runs even when unchanged.
   */
  async reload(forced: boolean): Promise<boolean> {
    if (this.stopped) return false;
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.stateFile);
    } catch (err) {
      return this.reject(new OpdError('invalid-document', `cannot read ${this.stateFile}: ${(err as Error).message}`));
    }
    const h = sha256(bytes);
    if (h === this.fileHash && !forced) return false;
    let prep: Prepared;
    try {
      prep = await this.prepare();
    } catch (err) {
      this.fileHash = h;
      return this.reject(toOpdError(err));
    }
    this.logWarnings(prep);
    this.fileHash = h;
    this.docError = undefined;
    const changed = prep.docHash !== this.prep.docHash;
    this.prep = prep;
    if (changed || forced) {
      this.o.log.info({ file: this.stateFile, document: prep.docHash.slice(0, 12), forced }, 'state document loaded');
      await this.restartWatches();
      this.trigger(forced ? 'sighup' : 'state-file', forced);
    }
    return true;
  }

  private reject(e: OpdError): boolean {
    const message = scrub(e.format());
    this.docError = { message, at: new Date().toISOString() };
    this.o.log.error(
      { file: this.stateFile, err: message },
      'new state document rejected; the last good one stays in force',
    );
    this.emit('rejected', this.docError);
    void this.o.notifier.send({ STATUS: this.statusLine() });
    return false;
  }

  /** Plan against the document in force (D-Bus Diff); never changes anything. */
  async diff(): Promise<object> {
    const prep = this.prep;
    const { plan } = await computePlan(prep, {
      settings: this.o.settings,
      log: this.o.log,
      allowDestroy: this.o.allowDestroy,
    });
    return { format_version: FORMAT_VERSION, ...planViewJSON(planView(plan, prep.redactor)) };
  }

  unknown(): ResourceStatus[] {
    return [...this.resources.values()]
      .filter((r) => r.state === 'unknown')
      .sort((a, b) => (a.address < b.address ? -1 : 1));
  }

  failing(): ResourceStatus[] {
    return [...this.resources.values()]
      .filter((r) => r.state === 'failing')
      .sort((a, b) => (a.address < b.address ? -1 : 1));
  }

  statusLine(): string {
    const n = this.resources.size;
    const ago = this.lastRun
      ? `last run ${Math.round((Date.now() - Date.parse(this.lastRun.at)) / 1000)}s ago`
      : 'no run yet';
    const bad = this.failing();
    const doc = this.docError ? '; state file rejected (last good document in force)' : '';
    if (this.lastRun?.status === 'error')
      return `reconcile failing: ${this.lastRun.error?.slice(0, 160)}; ${ago}${doc}`;
    const unk = this.unknown();
    const down = unk.length
      ? `, ${unk.length} unknown (${[...new Set(unk.map((r) => r.address.split('/')[0]))].join(', ')} unreachable)`
      : '';
    if (bad.length)
      return `${bad.length} resource${bad.length === 1 ? '' : 's'} failing (${bad[0].address}${bad.length > 1 ? ', …' : ''}), ${n - bad.length - unk.length} converged${down}, ${ago}${doc}`;
    if (unk.length) return `${n - unk.length} converged${down}, ${ago}${doc}`;
    return `converged, ${n} resource${n === 1 ? '' : 's'}, ${ago}${doc}`;
  }

  status(): object {
    const bad = this.failing();
    return {
      format_version: FORMAT_VERSION,
      state:
        this.lastRun?.status === 'error'
          ? 'error'
          : bad.length || this.unknown().length
            ? 'failing'
            : this.readyAt
              ? 'converged'
              : 'starting',
      status_line: this.statusLine(),
      pid: process.pid,
      started_at: this.startedAt.toISOString(),
      state_file: this.stateFile,
      document: this.prep?.docHash,
      document_error: this.docError ?? null,
      watching: this.watching,
      polling: this.polling,
      resync_s: this.o.resyncMs / 1000,
      runs: this.runs,
      drift_corrected: this.driftCount,
      last_run: this.lastRun ?? null,
      failing: bad.map((r) => ({
        address: r.address,
        error: r.error,
        failures: r.failures,
        next_attempt_at: r.nextAttemptAt ? new Date(r.nextAttemptAt).toISOString() : null,
      })),
      resources: [...this.resources.values()]
        .sort((a, b) => (a.address < b.address ? -1 : 1))
        .map((r) => ({
          address: r.address,
          state: r.state,
          ...(r.lastOkAt ? { last_ok_at: r.lastOkAt } : {}),
          ...(r.lastChangeAt ? { last_change_at: r.lastChangeAt } : {}),
          ...(r.error ? { error: r.error, failures: r.failures } : {}),
          ...(r.nextAttemptAt ? { next_attempt_at: new Date(r.nextAttemptAt).toISOString() } : {}),
          ...(r.lastDrift ? { last_drift: r.lastDrift } : {}),
        })),
    };
  }

  /**
   * SIGTERM: stop taking triggers; the current run finishes the changes in flight, starts no
   * other one, records them and writes run.end with `interrupted` (the signal); then dispose.
   */
  async stop(signal = 'SIGTERM'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    void this.o.notifier.send({ STOPPING: '1', STATUS: 'stopping' });
    this.stopping.abort(signal);
    if (this.immediate) clearImmediate(this.immediate);
    for (const t of [this.timer, this.retryTimer, this.fileTimer]) if (t) clearTimeout(t);
    for (const i of this.intervals) clearInterval(i);
    this.fileWatcher?.close();
    await this.running;
    await this.stopWatches();
    for (const w of this.waiters)
      w.resolve({
        status: 'error',
        trigger: 'stop',
        reasons: [],
        at: new Date().toISOString(),
        duration_ms: 0,
        changes: 0,
        drift: [],
        held: [],
        outcomes: [],
        error: 'the daemon is stopping',
      });
    this.waiters = [];
  }

  /** A second signal while stopping: abort the changes in flight at once (their intents stay for recovery). */
  abortNow(signal = 'SIGTERM'): void {
    this.abort.abort(signal);
  }
}
