/**
 * The audit of a run: the run.start entry, an intent before each wave (write-ahead), and one
 * entry per change outcome (buffered and written one wave at a time), with secrets as keyed hashes.
 */
import { resolve } from 'node:path';
import { hostname, userInfo } from 'node:os';
import type { AuditLog } from '../audit/chain.js';
import type { ChangeOutcome } from '../core/apply.js';
import { canonical, fingerprint, sha256 } from '../core/canonical.js';
import type { Computed, Prepared } from '../core/engine.js';
import { summarize, type Plan, type PlannedChange } from '../core/plan.js';
import { factsJSON } from '../core/facts.js';
import type { ResourceDiff, Settings } from '../core/plugin.js';
import { scrub, type Redactor } from '../core/secrets.js';

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '?');
  }
}

/**
 * sha256 of the canonical JSON of the redacted plan as planJSON writes it. Each change is built
 * with its keys already in canonical order, so that canonical() copies and sorts nothing: the
 * same text, the same hash, a fraction of the work for 10,000 changes.
 */
export function planHash(plan: Plan, redact: Redactor): string {
  const changes = plan.changes.map((ch) => {
    const [plugin, collection] = ch.resource.split('/');
    const o: Record<string, unknown> = {};
    o.action = ch.action;
    o.address = ch.address;
    o.depends_on = ch.deps.map((d) => plan.changes[d].address).filter((a, i, all) => all.indexOf(a) === i);
    if (ch.ops) o.ops = redact.ops(plugin, collection, ch.ops);
    const reason = ch.reason === undefined ? undefined : redact.text(ch.reason);
    if (reason) o.reason = reason;
    const refused = ch.refused === undefined ? undefined : redact.text(ch.refused);
    if (refused) o.refused = refused;
    if (ch.resource !== ch.address) o.resource = ch.resource;
    o.summary = redact.text(ch.summary);
    return o;
  });
  return sha256(canonical({ changes, summary: summarize(plan) }));
}

/** The values of the settings whose spec says `audited` (the plugins' manifests), by key. */
function auditedSettings(prep: Prepared, settings: Settings | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!settings) return out;
  for (const m of prep.registry?.manifests ?? [])
    for (const s of m.settings ?? []) if (s.audited && settings[s.key]) out[s.key] = settings[s.key];
  return out;
}

/** Write run.start: the document, the (redacted) plan's hash, who and what triggered it. */
export function recordStart(
  audit: AuditLog,
  runId: string,
  prep: Prepared,
  c: Computed,
  redact: Redactor,
  o: {
    trigger?: string | ((c: Computed) => string);
    startFields?: Record<string, unknown>;
    settings?: Settings;
  },
): void {
  const { plan, unreachable } = c;
  audit.append(runId, 'run.start', {
    document: prep.docHash,
    plan: planHash(plan, redact),
    file: prep.loaded.file,
    trigger: typeof o.trigger === 'function' ? o.trigger(c) : (o.trigger ?? 'cli'),
    user: safeUser(),
    host: hostname(),
    pid: process.pid,
    changes: plan.changes.length,
    // the host facts the document was resolved with (when:, ${fact.NAME}): why it applied what it did
    facts: factsJSON(prep.facts),
    ...(prep.excluded.length ? { excluded: prep.excluded.map((e) => e.address) } : {}),
    // where the run acted: a --root directory and a network namespace are not the host itself
    ...(o.settings?.root ? { root: resolve(o.settings.root) } : {}),
    // and the plugins' settings that say so (a network namespace: SettingSpec.audited)
    ...auditedSettings(prep, o.settings),
    ...(unreachable.length ? { unreachable: unreachable.map((u) => u.plugin) } : {}),
    ...o.startFields,
  });
}

/** Change and rollback entries of one run, buffered until `flush` (once per wave). */
export class RunRecorder {
  private readonly pending: { run: string; type: string; fields: Record<string, unknown> }[] = [];
  private readonly fps = new Map<unknown, string | null>();
  private readonly diffByAddr: Map<string, ResourceDiff>;

  constructor(
    private readonly audit: AuditLog,
    private readonly runId: string,
    private readonly redact: Redactor,
    diffs: ResourceDiff[],
  ) {
    this.diffByAddr = new Map(diffs.map((d) => [d.address, d]));
  }

  private fp(v: unknown, d: ResourceDiff): string | null {
    if (!this.fps.has(v))
      this.fps.set(v, v === undefined ? null : fingerprint(this.redact.resource(d.plugin, d.collection, v)));
    return this.fps.get(v)!;
  }

  record(type: 'change' | 'rollback', out: ChangeOutcome): void {
    const ch = out.change;
    const d = this.diffByAddr.get(ch.resource);
    const mask = (v: string) => this.redact.mask(v);
    this.pending.push({
      run: this.runId,
      type,
      fields: {
        address: ch.address,
        resource: ch.resource,
        action: ch.action,
        summary: scrub(ch.summary, mask),
        ...(ch.reason ? { reason: scrub(ch.reason, mask) } : {}),
        ops: d ? this.redact.ops(d.plugin, d.collection, ch.ops ?? []) : [],
        // fingerprints of the redacted values: an unkeyed hash of a secret could be brute-forced
        before: d ? this.fp(d.current, d) : null,
        after: d ? this.fp(out.status === 'ok' ? d.desired : d.current, d) : null,
        result: out.status,
        ...(out.error ? { error: scrub(out.error.message, mask) } : {}),
        ...(out.output !== undefined ? { output: scrub(out.output, mask) } : {}),
        attempts: out.attempts,
      },
    });
  }

  /**
   * Write-ahead: the changes about to start, on the record (written and fsync'ed) before any of
   * them runs; the outcomes buffered so far go in the same write. Ops are redacted as in the
   * change entries (the same cached redaction); long waves are split over several entries.
   */
  intent(kind: 'change' | 'rollback', changes: PlannedChange[]): void {
    for (let i = 0; i < changes.length; i += INTENT_CHUNK) {
      const items = changes.slice(i, i + INTENT_CHUNK).map((ch) => {
        const d = this.diffByAddr.get(ch.resource);
        const [plugin, collection] = d ? [d.plugin, d.collection] : ch.resource.split('/');
        const ops = this.redact.ops(plugin, collection, ch.ops ?? []);
        // keys in canonical (sorted) order: the trail's serializer then copies nothing; the
        // resource only where it is not the address itself (a port of a bridge)
        return ch.resource === ch.address
          ? { action: ch.action, address: ch.address, ops }
          : { action: ch.action, address: ch.address, ops, resource: ch.resource };
      });
      this.pending.push({ run: this.runId, type: 'intent', fields: { kind, changes: items } });
    }
    this.flush();
  }

  flush(): void {
    this.audit.appendMany(this.pending.splice(0));
  }
}

/** Changes per intent entry: a wave of 10,000 changes is 40 entries in one write (lines stay short). */
const INTENT_CHUNK = 256;
