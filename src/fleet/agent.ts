/**
 * The daemon's fleet side: the host's document comes from etcd (the per-host fragment copies,
 * merged), is kept on local disk and handed to the ordinary daemon loop as its state file, so
 * every run goes through the same engine (lock, verify, audit) and the loop keeps reconciling
 * the last document it had — drift included — while etcd is unreachable. After every run the
 * agent writes the host's status and audit head back, and keeps a lease-bound liveness key.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import { writeFileAtomic } from '../core/fsutil.js';
import { canonical, sha256 } from '../core/canonical.js';
import { loadTrustedKeys, verifyCopy, type TrustedKeys } from './sign.js';
import { newRedactor } from '../core/validate.js';
import type { StateDocument } from '../core/document.js';
import { readHead } from '../audit/chain.js';
import type { Daemon } from '../daemon/loop.js';
import { FRAGMENTS, aliveKey, auditHeadKey, desiredPrefix, labelsKey, statusKey } from './keys.js';
import { conflictError, documentText, mergeFragments, type Fragment } from './merge.js';
import { connect, etcdError, materializeHost, prefixJSON, type EtcdAccess } from './store.js';
import { TUNABLES } from '../core/tunables.js';

/** Retry a failed status write after this long, doubling up to the cap. */
const PUBLISH_RETRY_MS = TUNABLES.fleetPublishRetryMs;
const PUBLISH_RETRY_CAP_MS = TUNABLES.fleetPublishRetryCapMs;
/** At start, wait this long for etcd before reconciling the document kept on disk. */
const START_FETCH_MS = TUNABLES.fleetStartFetchMs;

export interface FleetOptions {
  access: EtcdAccess;
  host: string;
  labels: Record<string, string>;
  /** the local copy of the last document received (the daemon's state file) */
  stateFile: string;
  auditLog: string;
  leaseTtlS: number;
  log: Logger;
  /** the trusted operator public keys (--fleet-keys): only fragments they signed are merged */
  keysFile?: string;
}

export interface HostStatus {
  host: string;
  labels: Record<string, string>;
  pid: number;
  converged: boolean;
  /** hash of the document in force (what the daemon converges) */
  document: string | null;
  /** hash of the document merged from the fragments last received */
  desired: string | null;
  fragments: string[];
  /** fragments refused by the signature check (--fleet-keys): never merged nor applied */
  refused: { fragment: string; reason: string }[];
  /** whether fragments are verified against trusted operator keys */
  verified: boolean;
  error: string | null;
  failing: { address: string; error: string }[];
  drift_corrected: number;
  runs: number;
  last_run: { at: string; status: string; changes: number; drift: string[]; duration_ms: number } | null;
  audit_head: { seq: number; hash: string } | null;
  etcd_unreachable_since: string | null;
  updated_at: string;
}

export class FleetAgent {
  readonly client: Etcd3;
  private watcher?: Watcher;
  private fragmentsWatcher?: Watcher;
  /** whether this host writes its own fragment copies (undefined: not known yet) */
  private selfCopies: boolean | undefined;
  private copying?: Promise<void>;
  private copyAgain = false;
  private lease?: Lease;
  private daemon?: Daemon;
  desiredHash: string | null = null;
  fragments: string[] = [];
  conflict: string | null = null;
  refused: { fragment: string; reason: string }[] = [];
  private secrets: string[] = [];
  private publishing = false;
  private again = false;
  private retryTimer?: NodeJS.Timeout;
  private retryMs: number = PUBLISH_RETRY_MS;
  private refreshing?: Promise<void>;
  private refreshAgain = false;
  private unreachableSince: string | null = null;
  private lastHead = '';
  private stopped = false;

  constructor(readonly o: FleetOptions) {
    this.client = connect(o.access);
  }

  /** Before the daemon starts: fetch the document (bounded wait); else keep the one on disk. */
  async prepare(): Promise<void> {
    const cached = existsSync(this.o.stateFile) ? readFileSync(this.o.stateFile, 'utf8') : undefined;
    if (cached !== undefined) this.remember(cached);
    try {
      await withTimeout(
        (async () => {
          await this.client.put(labelsKey(this.o.host)).value(JSON.stringify(this.o.labels));
          await this.copyOwn();
          await this.fetch();
          // nothing accepted yet (refused or conflicting fragments) and nothing on disk: start empty
          if (!existsSync(this.o.stateFile)) this.write(documentText(mergeFragments([])));
        })(),
        START_FETCH_MS,
        'etcd did not answer',
      );
    } catch (err) {
      this.unreachableSince = new Date().toISOString();
      const e = etcdError(err, 'reading the host document from etcd');
      if (cached !== undefined)
        this.o.log.warn(
          { err: e.message, file: this.o.stateFile },
          'etcd unreachable at start; reconciling the last document kept on disk',
        );
      else {
        this.o.log.warn(
          { err: e.message },
          'etcd unreachable at start and no document on disk yet; starting with an empty document',
        );
        this.write(documentText(mergeFragments([])));
      }
    }
  }

  /** Attach to the running daemon loop: publish after every run, watch the host's fragments. */
  attach(daemon: Daemon): void {
    this.daemon = daemon;
    daemon.on('ran', () => this.publishSoon());
    daemon.on('rejected', () => this.publishSoon());
    this.startWatch();
    if (this.selfCopies !== false) this.startFragmentsWatch();
    this.publishSoon();
  }

  /**
   * Where the store lets this host read the fragments (no etcd auth), it writes its own copies:
   * a host that joins after a put takes the fragments that select it without an operator step.
   * With etcd auth, etcd refuses (PermissionDenied) and the operator's commands write them.
   */
  private async copyOwn(): Promise<void> {
    if (this.selfCopies === false) return;
    try {
      if (await materializeHost(this.client, this.o.host, this.o.labels))
        this.o.log.info('wrote this host’s fragment copies from the fragments that select it');
      this.selfCopies = true;
    } catch (err) {
      const e = etcdError(err, 'reading the fragments');
      if (e.kind !== 'permission') throw err;
      this.selfCopies = false;
      this.o.log.info(
        'this host may not read /opd/fragments/ (etcd auth): its fragment copies are written by the operator (put, enroll, relabel, sync)',
      );
    }
  }

  /**
   * Follow the fragments to keep its own copies current (the operator's commands write them
   * too; this catches a put that raced with this host's announcement). Label changes of an
   * enrolled host come with `relabel`, which rewrites the copies itself.
   */
  private startFragmentsWatch(): void {
    void this.client
      .watch()
      .prefix(FRAGMENTS)
      .create()
      .then((w) => {
        if (this.stopped) return void w.cancel();
        this.fragmentsWatcher = w;
        w.on('put', () => this.copySoon());
        w.on('delete', () => this.copySoon());
        w.on('connected', () => this.copySoon());
        w.on('error', (err) => this.o.log.warn({ err: err?.message }, 'etcd watch error (fragments)'));
        this.copySoon();
      })
      .catch((err) => {
        if (this.stopped) return;
        const e = etcdError(err, 'watching the fragments');
        if (e.kind === 'permission') return void (this.selfCopies = false);
        this.o.log.warn({ err: e.message }, 'cannot watch the fragments yet; retrying');
        setTimeout(() => !this.stopped && this.startFragmentsWatch(), TUNABLES.fleetRewatchMs).unref();
      });
  }

  private copySoon(): void {
    if (this.stopped || this.selfCopies === false) return;
    if (this.copying) {
      this.copyAgain = true;
      return;
    }
    this.copying = (async () => {
      do {
        this.copyAgain = false;
        try {
          await this.copyOwn();
        } catch (err) {
          this.o.log.warn(
            { err: etcdError(err, 'writing this host’s fragment copies').message },
            'cannot update this host’s fragment copies; keeping the last document',
          );
        }
      } while (this.copyAgain && !this.stopped);
    })().finally(() => (this.copying = undefined));
  }

  private startWatch(): void {
    void this.client
      .watch()
      .prefix(desiredPrefix(this.o.host))
      .create()
      .then((w) => {
        if (this.stopped) return void w.cancel();
        this.watcher = w;
        w.on('put', () => this.refreshSoon());
        w.on('delete', () => this.refreshSoon());
        // (re)connected after etcd was away: catch up on what changed meanwhile, publish
        w.on('connected', () => {
          this.refreshSoon();
          this.publishSoon();
        });
        w.on('disconnected', (err) =>
          this.o.log.warn({ err: err?.message }, 'etcd watch disconnected; reconciling the last document meanwhile'),
        );
        w.on('error', (err) => this.o.log.warn({ err: err?.message }, 'etcd watch error'));
        this.refreshSoon();
      })
      .catch((err) => {
        if (this.stopped) return;
        this.o.log.warn({ err: etcdError(err, 'watch').message }, 'cannot watch etcd yet; retrying');
        setTimeout(() => !this.stopped && this.startWatch(), TUNABLES.fleetRewatchMs).unref();
      });
  }

  private refreshSoon(): void {
    if (this.stopped) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        try {
          await this.fetch();
        } catch (err) {
          this.o.log.warn(
            { err: etcdError(err, 'reading the host document').message },
            'cannot read the host document from etcd; keeping the last one',
          );
        }
      } while (this.refreshAgain && !this.stopped);
    })().finally(() => (this.refreshing = undefined));
  }

  /** Read the host's fragment copies, merge, and hand a new document to the daemon. */
  private async fetch(): Promise<void> {
    const frags = [...(await prefixJSON<Fragment>(this.client, desiredPrefix(this.o.host))).values()];
    if (this.o.keysFile) {
      const refused = this.check(frags);
      if (refused.length) {
        const text = canonical(refused);
        if (text !== canonical(this.refused))
          this.o.log.error(
            { refused },
            'fragments refused by the signature check; the last good document stays in force',
          );
        this.refused = refused;
        this.publishSoon();
        return;
      }
      this.refused = [];
    }
    const m = mergeFragments(frags);
    if (m.conflict) {
      const msg = conflictError(m.conflict, this.o.host).message;
      if (msg !== this.conflict)
        this.o.log.error({ err: msg }, 'fragments conflict; the last good document stays in force');
      this.conflict = msg;
      this.publishSoon();
      return;
    }
    this.conflict = null;
    this.fragments = m.fragments;
    const text = documentText(m);
    const cur = existsSync(this.o.stateFile) ? readFileSync(this.o.stateFile, 'utf8') : undefined;
    if (cur !== text) {
      this.write(text);
      this.o.log.info({ document: m.hash.slice(0, 12), fragments: m.fragments }, 'new host document from etcd');
      if (this.daemon) await this.daemon.reload(false);
    } else this.remember(text);
    this.publishSoon();
  }

  /** The copies that fail the signature check, with why (sorted by fragment id). */
  private check(frags: Fragment[]): { fragment: string; reason: string }[] {
    let trusted: TrustedKeys;
    try {
      trusted = loadTrustedKeys(this.o.keysFile!);
    } catch (err) {
      const reason = `the trusted keys cannot be read: ${(err as Error).message}`;
      return frags.map((f) => ({ fragment: String(f.id), reason }));
    }
    return frags
      .map((f) => ({ fragment: String(f.id), reason: verifyCopy(f, trusted, this.o.host, this.o.labels) }))
      .filter((x): x is { fragment: string; reason: string } => x.reason !== null)
      .sort((a, b) => (a.fragment < b.fragment ? -1 : a.fragment > b.fragment ? 1 : 0));
  }

  private write(text: string): void {
    writeFileAtomic(this.o.stateFile, text, { mode: 0o600 });
    this.remember(text);
  }

  private remember(text: string): void {
    this.desiredHash = sha256(text);
    try {
      this.secrets = secretValues(JSON.parse(text) as StateDocument);
    } catch {
      this.secrets = [];
    }
  }

  /** Secret values of the document never reach the status: error texts are scrubbed. */
  private scrub(s: string): string {
    let out = s;
    for (const v of this.secrets) out = out.split(v).join('<secret>');
    return out;
  }

  status(): HostStatus {
    const d = this.daemon;
    const failing = d ? d.failing().map((r) => ({ address: r.address, error: this.scrub(r.error ?? '') })) : [];
    const lr = d?.lastRun;
    const head = readHead(this.o.auditLog);
    const docErr = d?.docError?.message ?? null;
    const runErr = lr?.status === 'error' ? (lr.error ?? 'reconcile failed') : null;
    const inForce = d?.prep?.docHash ?? null;
    const refusedText = this.refused.length
      ? `refused ${this.refused.map((r) => `fragment ${JSON.stringify(r.fragment)}: ${r.reason}`).join('; ')}; the last good document stays in force`
      : null;
    const converged =
      !!d &&
      !this.conflict &&
      !refusedText &&
      !docErr &&
      !!lr &&
      (lr.status === 'ok' || lr.status === 'noop') &&
      failing.length === 0 &&
      inForce === this.desiredHash;
    return {
      host: this.o.host,
      labels: this.o.labels,
      pid: process.pid,
      converged,
      document: inForce,
      desired: this.desiredHash,
      fragments: this.fragments,
      refused: this.refused,
      verified: !!this.o.keysFile,
      error: this.conflict ?? refusedText ?? (docErr ? this.scrub(docErr) : runErr ? this.scrub(runErr) : null),
      failing,
      drift_corrected: d?.driftCount ?? 0,
      runs: d?.runs ?? 0,
      last_run: lr
        ? { at: lr.at, status: lr.status, changes: lr.changes, drift: lr.drift, duration_ms: lr.duration_ms }
        : null,
      audit_head: head && head.seq >= 0 ? { seq: head.seq, hash: head.hash } : null,
      etcd_unreachable_since: this.unreachableSince,
      updated_at: new Date().toISOString(),
    };
  }

  /** Write status, audit head and liveness; on failure retry with a capped backoff until etcd is back. */
  publishSoon(): void {
    if (this.stopped) return;
    if (this.publishing) {
      this.again = true;
      return;
    }
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.publishing = true;
    void this.publish()
      .then(() => {
        this.retryMs = PUBLISH_RETRY_MS;
        this.unreachableSince = null;
      })
      .catch((err) => {
        this.unreachableSince ??= new Date().toISOString();
        this.o.log.warn(
          { err: etcdError(err, 'writing status').message, retry_in_ms: this.retryMs },
          'cannot write status to etcd; reconciling locally meanwhile',
        );
        this.dropLease();
        this.again = false;
        if (!this.stopped) this.retryTimer = setTimeout(() => this.publishSoon(), this.retryMs);
        this.retryMs = Math.min(PUBLISH_RETRY_CAP_MS, this.retryMs * 2);
      })
      .finally(() => {
        this.publishing = false;
        if (this.again) {
          this.again = false;
          this.publishSoon();
        }
      });
  }

  private async publish(): Promise<void> {
    const h = this.o.host;
    await this.ensureAlive();
    const st = this.status();
    if (this.unreachableSince) st.etcd_unreachable_since = null; // this write is the proof it is back
    const head = st.audit_head ? JSON.stringify({ ...st.audit_head }) : '';
    if (head && head !== this.lastHead) {
      await this.client.put(auditHeadKey(h)).value(JSON.stringify({ ...st.audit_head, at: st.updated_at }));
      this.lastHead = head;
    }
    await this.client.put(statusKey(h)).value(JSON.stringify(st));
  }

  private async ensureAlive(): Promise<void> {
    if (this.lease) return;
    const lease = this.client.lease(this.o.leaseTtlS);
    lease.on('lost', (err) => {
      if (this.lease !== lease || this.stopped) return;
      this.o.log.warn({ err: err?.message }, 'liveness lease lost; renewing when etcd answers');
      this.lease = undefined;
      this.publishSoon();
    });
    this.lease = lease;
    try {
      await lease
        .put(aliveKey(this.o.host))
        .value(JSON.stringify({ pid: process.pid, since: new Date().toISOString() }));
      await this.client.put(labelsKey(this.o.host)).value(JSON.stringify(this.o.labels));
    } catch (err) {
      this.dropLease();
      throw err;
    }
  }

  private dropLease(): void {
    const l = this.lease;
    this.lease = undefined;
    if (l) void l.release();
  }

  /** Stop: revoke the lease (the host shows not alive at once), final status, close. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    try {
      await this.watcher?.cancel();
      await this.fragmentsWatcher?.cancel();
    } catch {
      /* gone */
    }
    try {
      await withTimeout(this.lease ? this.lease.revoke() : Promise.resolve(), TUNABLES.fleetRevokeMs, 'revoke');
    } catch {
      /* it expires by itself */
    }
    this.client.close();
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const ac = new AbortController();
  const late = sleep(ms, undefined, { signal: ac.signal }).then(() =>
    Promise.reject(new Error(`${what} within ${ms} ms`)),
  );
  try {
    return await Promise.race([p, late]);
  } finally {
    ac.abort();
    late.catch(() => undefined);
  }
}

/** The values of the document's secret fields (schema `x-opd-secret`), longest first. */
export function secretValues(doc: StateDocument): string[] {
  const r = newRedactor();
  const out = new Set<string>();
  const walk = (raw: unknown, red: unknown) => {
    if (red === '<secret>' && raw !== '<secret>' && raw !== undefined) {
      const s = typeof raw === 'string' ? raw : JSON.stringify(raw);
      if (s.length >= 4) out.add(s);
      return;
    }
    if (raw && typeof raw === 'object' && red && typeof red === 'object')
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) walk(v, (red as Record<string, unknown>)[k]);
  };
  for (const [name, section] of Object.entries(doc.plugins ?? {})) walk(section, r.section(name, section));
  return [...out].sort((a, b) => b.length - a.length);
}
