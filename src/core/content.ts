/**
 * Content diffs: the texts a resource carries (schema nodes marked `x-opd-text` — file content,
 * unit files and drop-ins, libvirt XML, LXC config, exec scripts) shown as unified diffs between
 * the host and the document, as `ansible --diff`, Puppet's show_diff and `kubectl diff` do.
 * A text that is secret (a resource with `secret: true`, or a value that holds a registered secret) is never shown: its change says so and the summary carries
 * the keyed fingerprint. A text the document removes is not shown either (only its size): the
 * document does not hold it, so nothing says it is not secret. Binary and huge texts are not diffed, long diffs are cut, both with a note.
 */
import { structuredPatch } from 'diff';
import type { Plan, PlannedChange } from './plan.js';
import type { Obj, ResourceDiff } from './plugin.js';
import { holdsSecret, scrub, type Redactor } from './secrets.js';

export const CONTENT_LIMITS = {
  /** Texts above this size (either side) are not diffed. */
  maxBytes: 1024 * 1024,
  /** A diff is cut after this many lines (its hunks' lines, not counting the two header lines). */
  maxLines: 200,
  /** Unchanged lines around each change. */
  context: 3,
};

/** One text's diff of a change: the unified diff, or a note saying why none is shown (and when it was cut). */
export interface ContentDiff {
  /** the text's path under the resource (`content`, `dropins/10-env.conf`) */
  field: string;
  /** unified diff (`--- field (host)`, `+++ field (document)`, hunks) */
  diff?: string;
  note?: string;
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function at(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const k of path) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** A map shown as text (LXC config): one `key = value` line per value, keys sorted. */
function keyValueText(v: Obj): string {
  const lines: string[] = [];
  for (const k of Object.keys(v).sort()) {
    const x = v[k];
    for (const one of Array.isArray(x) ? x : [x]) lines.push(`${k} = ${String(one)}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

type Side = { text: string } | { absent: true } | { binary: string };

function side(v: unknown, kind: unknown): Side {
  if (v === undefined || v === null || (isObj(v) && v.state === 'absent')) return { absent: true };
  if (typeof v === 'string') return v.includes('\0') ? { binary: `${Buffer.byteLength(v)} B` } : { text: v };
  if (kind === 'key-value' && isObj(v)) return { text: keyValueText(v) };
  if (isObj(v) && typeof v.sha256 === 'string')
    return { binary: `${typeof v.bytes === 'number' ? `${v.bytes} B` : 'size unknown'}` };
  return { text: JSON.stringify(v) };
}

function size(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}

/** The unified diff of two texts, cut at `maxLines` (with a note), or a note alone. */
export function unifiedDiff(
  field: string,
  before: string | undefined,
  after: string | undefined,
  limits = CONTENT_LIMITS,
): ContentDiff {
  const a = before ?? '';
  const b = after ?? '';
  const big = Math.max(Buffer.byteLength(a), Buffer.byteLength(b));
  if (big > limits.maxBytes)
    return { field, note: `${field}: too large to diff (${size(big)}; at most ${size(limits.maxBytes)})` };
  const p = structuredPatch('host', 'document', a, b, '', '', { context: limits.context });
  const body: string[] = [];
  for (const h of p.hunks) {
    body.push(`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`);
    body.push(...h.lines);
  }
  if (!body.length) return { field };
  const head = [
    `--- ${field} (${before === undefined ? 'none' : 'host'})`,
    `+++ ${field} (${after === undefined ? 'removed' : 'document'})`,
  ];
  if (body.length > limits.maxLines)
    return {
      field,
      diff: [...head, ...body.slice(0, limits.maxLines)].join('\n') + '\n',
      note: `${field}: diff cut at ${limits.maxLines} of ${body.length} lines`,
    };
  return { field, diff: [...head, ...body].join('\n') + '\n' };
}

/** Whether the resource says its texts are secret (files' `secret: true`). */
function secretResource(d: ResourceDiff): boolean {
  return [d.desired, d.current].some((v) => isObj(v) && v.secret === true);
}

type TextFields = Map<string, { path: string[]; kind: unknown }>;

/** The texts (schema nodes marked x-opd-text) either side of a resource diff holds, by field. */
function textFields(d: ResourceDiff, r: Redactor): TextFields {
  const fields: TextFields = new Map();
  for (const v of [d.current, d.desired])
    for (const t of r.texts(d.plugin, d.collection, d.name, v)) fields.set(t.path.join('/'), t);
  return fields;
}

/**
 * The content diffs of one resource diff's texts that `change` carries: a text whose path one
 * of the change's operations touches, or whose path is the change's sub-address
 * (`systemd/units/x.service/dropins/10-env.conf`).
 */
export function changeContentDiffs(
  change: Pick<PlannedChange, 'address' | 'resource' | 'ops'>,
  d: ResourceDiff,
  r: Redactor,
  limits = CONTENT_LIMITS,
  fields: TextFields = textFields(d, r),
): ContentDiff[] {
  if (!fields.size) return [];
  const opPaths = (change.ops ?? []).map((o) => o.path);
  const sub = change.address.startsWith(change.resource + '/') ? change.address.slice(change.resource.length + 1) : '';
  const out: ContentDiff[] = [];
  const secret = secretResource(d);
  for (const [field, t] of [...fields].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const ptr = '/' + t.path.map((s) => s.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
    const touched =
      field === sub || opPaths.some((p) => p === ptr || p === '' || ptr.startsWith(p + '/') || p.startsWith(ptr + '/'));
    if (!touched) continue;
    const cur = at(d.current, t.path);
    const want = d.action === 'delete' ? undefined : at(d.desired, t.path);
    const a = side(cur, t.kind);
    const b = side(want, t.kind);
    // a text is shown only when the resource is not secret and neither side holds a secret
    // value (the schema may mark it x-opd-secret too: then it is never a value in ops or summaries)
    const masked =
      secret ||
      [a, b].some((x) => 'text' in x && holdsSecret(x.text)) ||
      [cur, want].some((v) => v !== undefined && typeof v !== 'string' && holdsSecret(JSON.stringify(v)));
    if (masked) {
      out.push({ field, note: `${field}: secret, not shown` });
      continue;
    }
    // a text the document removes (state: absent, a drop-in it no longer names): the document
    // does not hold it, so nothing says it is not secret (a secret file removed with a bare
    // `{ state: absent }`): its size only
    if ('absent' in b && !('absent' in a)) {
      const was = 'text' in a ? size(Buffer.byteLength(a.text)) : 'binary' in a ? a.binary : '';
      out.push({ field, note: `${field}: removed (${was}), not shown: only texts the document holds are diffed` });
      continue;
    }
    if ('binary' in a || 'binary' in b) {
      const what = (s: Side) => ('binary' in s ? `binary, ${s.binary}` : 'absent' in s ? 'none' : 'text');
      out.push({ field, note: `${field}: binary content, no diff (${what(a)} → ${what(b)})` });
      continue;
    }
    const cd = unifiedDiff(field, 'text' in a ? a.text : undefined, 'text' in b ? b.text : undefined, limits);
    if (cd.diff === undefined && cd.note === undefined) continue;
    // belt and braces: nothing registered as secret passes, whatever the schema says
    out.push({
      field,
      ...(cd.diff !== undefined ? { diff: scrub(cd.diff, (v) => r.mask(v)) } : {}),
      ...(cd.note ? { note: cd.note } : {}),
    });
  }
  return out;
}

/**
 * The content diffs of a plan, by change id. Each text of a resource is shown once, on the first
 * change (in plan order) that carries it.
 */
export function planContentDiffs(plan: Plan, r: Redactor, limits = CONTENT_LIMITS): Map<number, ContentDiff[]> {
  const byAddr = new Map(plan.diffs.map((d) => [d.address, d]));
  // a resource's texts are found once, not once per change: a bridge with 1,000 port changes
  // would walk its 1,000 ports 1,000 times
  const fieldsOf = new Map<ResourceDiff, TextFields>();
  const shown = new Set<string>();
  const out = new Map<number, ContentDiff[]>();
  for (const c of plan.changes) {
    const d = byAddr.get(c.resource);
    if (!d) continue;
    let fields = fieldsOf.get(d);
    if (!fields) fieldsOf.set(d, (fields = textFields(d, r)));
    const diffs = changeContentDiffs(c, d, r, limits, fields).filter((x) => {
      const k = `${c.resource}\0${x.field}`;
      if (shown.has(k)) return false;
      shown.add(k);
      return true;
    });
    if (diffs.length) out.set(c.id, diffs);
  }
  return out;
}

/** The diff of a resource as a whole (a drifted resource in `opd status` and its drift entry). */
export function resourceContentDiffs(d: ResourceDiff, r: Redactor, limits = CONTENT_LIMITS): ContentDiff[] {
  return changeContentDiffs({ address: d.address, resource: d.address, ops: d.ops }, d, r, limits);
}

/** The JSON fields of a change's content diffs: `diff` (every text's unified diff) and `diff_note`. */
export function diffFields(diffs: ContentDiff[] | undefined): { diff?: string; diff_note?: string } {
  if (!diffs?.length) return {};
  const text = diffs
    .map((d) => d.diff)
    .filter(Boolean)
    .join('');
  const note = diffs
    .map((d) => d.note)
    .filter(Boolean)
    .join('; ');
  return { ...(text ? { diff: text } : {}), ...(note ? { diff_note: note } : {}) };
}
