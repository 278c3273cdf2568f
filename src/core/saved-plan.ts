/**
 * Saved plans (`opd diff --out plan.json`, `opd apply plan.json`), as `terraform plan -out`:
 * the plan with the hash of the document it came from and a fingerprint of the current state
 * of every resource the document names. Applying it re-reads the host under the lock and
 * applies only when nothing changed since; otherwise it refuses (exit 3) naming what changed.
 * The file holds no secret values (they are masked) and not the document itself: the document
 * is read again from its path and must hash the same. Everything in it that derives from secret
 * content — masked values, fingerprints in summaries, the resources' fingerprints — is keyed
 * with the host's secret key (the caller passes the keyed Redactor: `prep.redactor.withKey(k)`),
 * so the file allows no offline guessing, and a secret changed on the host still makes it stale.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { canonical, fingerprint, sha256 } from './canonical.js';
import { writeFileAtomic } from './fsutil.js';
import { OpdError } from './errors.js';
import { displayAddress, planJSON, type ChangeJSON, type Plan, type PlanSummary } from './plan.js';
import type { Redactor } from './secrets.js';
import { redactChange } from './report.js';
import type { Computed, Prepared } from './engine.js';

export const SAVED_PLAN_FORMAT = 'opd-plan/2';

export interface SavedPlan {
  format: typeof SAVED_PLAN_FORMAT;
  created: string;
  /** absolute path of the state document */
  file: string;
  /** sha256 of the document text */
  document: string;
  allow_destroy: boolean;
  /** sha256 of the canonical plan (secrets masked); the audit trail's run.start records it as saved_plan */
  plan_hash: string;
  /** address → fingerprint of the resource's current state (null: absent) when the plan was made */
  resources: Record<string, string | null>;
  /** address → field → fingerprint of that field's current value: says how a resource changed since */
  fields: Record<string, Record<string, string>>;
  /** `opd diff --target`: the resources the plan was restricted to (with their dependencies) */
  targets?: string[];
  /** the plan as `opd diff -o json` prints it (with content diffs, which the plan hash leaves out) */
  plan: { changes: ChangeJSON[]; summary: PlanSummary };
}

function shownPlan(plan: Plan, r: Redactor): ReturnType<typeof planJSON> {
  return planJSON({
    diffs: [],
    changes: plan.changes.map((c) => ({ ...redactChange(c, r), data: undefined })),
  });
}

/** The hash that names a plan: same document + same host state give the same hash. */
export function planHash(plan: Plan, r: Redactor): string {
  return sha256(canonical(shownPlan(plan, r)));
}

/** address → field → fingerprint of the field's current value (redacted: secrets keyed). */
export function fieldFingerprints(c: Computed, r: Redactor): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const d of [...c.diffs].sort((a, b) => (a.address < b.address ? -1 : 1))) {
    if (d.current === undefined) continue;
    const shown = r.resource(d.plugin, d.collection, d.current) as Record<string, unknown>;
    const f: Record<string, string> = {};
    for (const k of Object.keys(shown).sort()) f[k] = fingerprint(shown[k]) ?? 'null';
    out[d.address] = f;
  }
  return out;
}

export function resourceFingerprints(c: Computed, r: Redactor): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const d of [...c.diffs].sort((a, b) => (a.address < b.address ? -1 : 1)))
    out[d.address] = d.current === undefined ? null : fingerprint(r.resource(d.plugin, d.collection, d.current));
  return out;
}

/**
 * `keyed`: the document's Redactor with the host's secret key (src/audit/key.ts). `content`: the
 * content diffs of the changes by id, shown by `opd show-plan` (secret texts have none).
 */
export function makeSavedPlan(
  prep: Prepared,
  c: Computed,
  o: {
    allowDestroy: boolean;
    keyed: Redactor;
    targets?: string[];
    content?: (id: number) => { diff?: string; diff_note?: string } | undefined;
  },
): SavedPlan {
  const shown = shownPlan(c.plan, o.keyed);
  return {
    format: SAVED_PLAN_FORMAT,
    created: new Date().toISOString(),
    file: resolve(prep.loaded.file),
    document: prep.docHash,
    allow_destroy: o.allowDestroy,
    plan_hash: sha256(canonical(shown)),
    resources: resourceFingerprints(c, o.keyed),
    fields: fieldFingerprints(c, o.keyed),
    ...(o.targets?.length ? { targets: o.targets } : {}),
    plan: {
      changes: shown.changes.map((ch, i) => ({ ...ch, ...o.content?.(c.plan.changes[i].id) })),
      summary: shown.summary,
    },
  };
}

export function writeSavedPlan(path: string, p: SavedPlan): void {
  writeFileAtomic(path, JSON.stringify(p, null, 2) + '\n', { mode: 0o600 });
}

/** The saved plan in `path`, or undefined when the file is not one (a state document). */
export function readSavedPlan(path: string): SavedPlan | undefined {
  if (path === '-' || !/\.json$/i.test(path)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object' || (v as { format?: unknown }).format === undefined) return undefined;
  const p = v as SavedPlan;
  if (p.format !== SAVED_PLAN_FORMAT)
    throw new OpdError(
      'usage',
      `${path}: a saved plan of format ${JSON.stringify(p.format)}; this opd reads ${SAVED_PLAN_FORMAT}`,
      { hint: 'make the plan again with this opd: opd diff FILE --out plan.json' },
    );
  for (const k of ['file', 'document', 'plan_hash', 'resources', 'fields', 'plan'] as const)
    if (p[k] === undefined)
      throw new OpdError('usage', `${path}: not a complete saved plan (no ${k})`, {
        hint: 'make it again: opd diff FILE --out plan.json',
      });
  return p;
}

/** Throws stale-plan (exit 3) naming what changed since the plan was made (`keyed`: as for makeSavedPlan). */
export function checkSavedPlan(saved: SavedPlan, prep: Prepared, c: Computed, planFile: string, keyed: Redactor): void {
  if (prep.docHash !== saved.document)
    throw new OpdError(
      'stale-plan',
      `${planFile}: the document ${saved.file} changed since the plan was made; nothing was applied`,
      {
        hint: `review the new plan: opd diff ${saved.file} --out ${planFile}`,
      },
    );
  const now = resourceFingerprints(c, keyed);
  const nowFields = fieldFingerprints(c, keyed);
  const changed = [...new Set([...Object.keys(saved.resources), ...Object.keys(now)])]
    .filter((a) => (saved.resources[a] ?? null) !== (now[a] ?? null) || !(a in saved.resources) || !(a in now))
    .sort();
  if (changed.length) {
    const how = (a: string): string => {
      const was = saved.resources[a] ?? null;
      const is = now[a] ?? null;
      if (!(a in saved.resources)) return 'not in the plan';
      if (!(a in now)) return 'no longer in the document';
      if (was === null) return 'created on the host';
      if (is === null) return 'removed from the host';
      const before = saved.fields[a] ?? {};
      const after = nowFields[a] ?? {};
      const fields = [...new Set([...Object.keys(before), ...Object.keys(after)])]
        .filter((f) => before[f] !== after[f])
        .sort();
      return fields.length ? `${fields.join(', ')} changed on the host` : 'changed on the host';
    };
    throw new OpdError(
      'stale-plan',
      `${planFile}: ${changed.length} resource${changed.length === 1 ? '' : 's'} changed since the plan was made: ${changed.map((a) => `${displayAddress(a)} (${how(a)})`).join(', ')}; nothing was applied`,
      {
        hint: `review the new plan: opd diff ${saved.file} --out ${planFile}`,
        address: changed[0],
      },
    );
  }
  const shownNow = shownPlan(c.plan, keyed);
  if (sha256(canonical(shownNow)) !== saved.plan_hash) {
    const key = (ch: ChangeJSON) => `${ch.address}\0${ch.action}`;
    const before = new Map(saved.plan.changes.map((ch) => [key(ch), ch]));
    const after = new Map(shownNow.changes.map((ch) => [key(ch), ch]));
    const diffs: string[] = [];
    for (const [k, ch] of before)
      if (!after.has(k)) diffs.push(`${displayAddress(ch.address)} (${ch.action}) is no longer planned`);
    for (const [k, ch] of after) {
      const was = before.get(k);
      if (!was) diffs.push(`${displayAddress(ch.address)} (${ch.action}) is newly planned`);
      else if (canonical({ ...was, diff: undefined, diff_note: undefined }) !== canonical(ch))
        diffs.push(
          `${displayAddress(ch.address)} (${ch.action}) ${was.summary !== ch.summary ? `was "${was.summary}", now "${ch.summary}"` : 'differs (its order or operations)'}`,
        );
    }
    throw new OpdError(
      'stale-plan',
      `${planFile}: the plan computed now differs from the saved one (plan ${saved.plan_hash.slice(0, 12)}): ${diffs.length ? diffs.sort().join('; ') : 'the order of its changes'}; nothing was applied`,
      {
        hint: `review the new plan: opd diff ${saved.file} --out ${planFile}`,
      },
    );
  }
}
