/**
 * What a run reports, and the formatting of it that more than one front end uses (cli, daemon,
 * D-Bus API): the report types, the JSON form, plan redaction, durations and unknown resources.
 */
import type { ChangeOutcome } from './apply.js';
import type { Computed, UnreachablePlugin } from './engine.js';
import { FORMAT_VERSION, planJSON, type Plan, type PlannedChange } from './plan.js';
import type { Redactor } from './secrets.js';
import { diffFields, planContentDiffs, type ContentDiff } from './content.js';

export interface VerificationFailure {
  address: string;
  ops: unknown[];
  /** The re-read itself failed (the backend went away during the run). */
  error?: string;
}

export interface RunReport {
  run?: string;
  /** `interrupted`: a first SIGINT/SIGTERM stopped it (in-flight changes finished, the rest not started). */
  status: 'ok' | 'noop' | 'failed' | 'planned' | 'blocked' | 'interrupted';
  /** The signal that stopped the run (status `interrupted`). */
  interrupted?: string;
  plan: Plan;
  outcomes: ChangeOutcome[];
  verification: VerificationFailure[];
  rollback?: { outcomes: ChangeOutcome[]; verification: VerificationFailure[] };
  durationMs: number;
  audit?: { seq: number; recovered: string[] };
  /** What was read and diffed (all resources, also the held ones): the daemon's per-resource status. */
  computed?: Computed;
  /** plugins that could not be read (their resources are unknown); only with `partial` or a dry run */
  unreachable: UnreachablePlugin[];
  /**
   * (status `interrupted`) plugins of the run's second stage (their backend the first stage
   * brings up) that a stop during the first stage left unread and unplanned: nothing of them started.
   */
  stageTwoNotStarted?: UnreachablePlugin[];
}

export function countOutcomes(outcomes: ChangeOutcome[]): Record<string, number> {
  const s: Record<string, number> = { ok: 0, failed: 0, skipped: 0, refused: 0 };
  for (const o of outcomes) s[o.status] = (s[o.status] ?? 0) + 1;
  return s;
}

/** A change as it may be shown or recorded: secret values in its ops and texts masked. */
export function redactChange(c: PlannedChange, r: Redactor): PlannedChange {
  const [plugin, collection] = c.resource.split('/');
  const text = (s: string | undefined) => (s === undefined ? undefined : r.text(s));
  // Object.assign, not a spread followed by members: V8 builds the latter ~10x slower (10,000 changes per plan hash)
  return Object.assign(
    {},
    c,
    { ops: c.ops ? r.ops(plugin, collection, c.ops) : undefined, summary: r.text(c.summary) },
    c.reason !== undefined ? { reason: text(c.reason) } : {},
    c.refused !== undefined ? { refused: text(c.refused) } : {},
    c.blocker !== undefined ? { blocker: text(c.blocker) } : {},
  );
}

/** Secrets never reach output: redact the RFC 6902 values and the texts of every change. */
export function redactPlan(plan: Plan, r: Redactor): Plan {
  return { diffs: plan.diffs, changes: plan.changes.map((c) => redactChange(c, r)) };
}

/** A plan as it may be shown: redacted, and (unless `content` is false) the content diffs of its changes by id. */
export interface PlanView {
  plan: Plan;
  content: Map<number, ContentDiff[]>;
}

export function planView(plan: Plan, r: Redactor, content = true): PlanView {
  return { plan: redactPlan(plan, r), content: content ? planContentDiffs(plan, r) : new Map() };
}

/** The JSON of a plan view: `changes` (each with `diff`/`diff_note` when it carries texts) and `summary`. */
export function planViewJSON(v: PlanView): ReturnType<typeof planJSON> {
  return planJSON(v.plan, (id) => diffFields(v.content.get(id)));
}

export function ms(n: number): string {
  return n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`;
}

/** Resources of plugins whose backend is down: shown as unknown, in human and JSON output. */
export interface UnknownShown {
  plugin: string;
  error: string;
  hint?: string;
  resources: string[];
}

export function unknownJSON(
  u: { plugin: string; error: { message: string; hint?: string }; resources: string[] }[],
): UnknownShown[] {
  return u.map((x) => ({
    plugin: x.plugin,
    error: x.error.message,
    ...(x.error.hint ? { hint: x.error.hint } : {}),
    resources: x.resources,
  }));
}

export function unknownLines(u: UnknownShown[]): string[] {
  const lines: string[] = [];
  for (const x of u) for (const r of x.resources) lines.push(`? ${r}: unknown (${x.plugin} unreachable)`);
  return lines;
}

function outcomeJSON(o: ChangeOutcome, attempts: boolean, r: Redactor): object {
  return {
    address: o.change.address,
    action: o.change.action,
    status: o.status,
    ...(o.error ? { error: r.text(o.error.message) } : {}),
    ...(attempts ? { attempts: o.attempts } : {}),
  };
}

/** The JSON form of a run (`opd apply -o json`, the daemon's D-Bus ApplyState); `content`: with content diffs. */
export function reportJSON(r: RunReport, redactor: Redactor, content = true): object {
  return {
    format_version: FORMAT_VERSION,
    status: r.status,
    ...(r.run ? { run: r.run } : {}),
    ...(r.interrupted ? { interrupted: r.interrupted } : {}),
    duration_ms: r.durationMs,
    plan: planViewJSON(planView(r.plan, redactor, content)),
    outcomes: r.outcomes.map((o) => outcomeJSON(o, true, redactor)),
    verification: r.verification,
    ...(r.rollback
      ? {
          rollback: {
            outcomes: r.rollback.outcomes.map((o) => outcomeJSON(o, false, redactor)),
            verification: r.rollback.verification,
          },
        }
      : {}),
    ...(r.audit ? { audit: r.audit } : {}),
    ...(r.unreachable.length ? { unknown: unknownJSON(r.unreachable) } : {}),
    ...(r.stageTwoNotStarted ? { second_stage_not_started: unknownJSON(r.stageTwoNotStarted) } : {}),
  };
}
