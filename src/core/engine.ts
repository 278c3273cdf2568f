/**
 * The pipeline: load ─► normalize ─► validate ─► read ─► diff ─► plan ─► apply ─► verify ─► audit.
 * `diff` and `apply --dry-run` stop after plan and never get an ApplyContext.
 */
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ensureDir } from './fsutil.js';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { loadDocument, locateProblems, type LoadedDocument, type StateDocument } from './document.js';
import { validateDocument } from './validate.js';
import { normalizeDocument } from './normalize.js';
import { resolveParams, type VarSources } from './params.js';
import { checkSemantics } from './semantic.js';
import { diffSection, isObj, project, compare } from './diff.js';
import { buildPlan, checkResourceCycles, collectEdges, planJSON, summarize, type Plan, type PlannedChange } from './plan.js';
import { applyPlan, type ChangeOutcome } from './apply.js';
import { OpdError, toOpdError, type Problem } from './errors.js';
import type { Change, Obj, Plugin, ReadContext, ResourceDiff, Settings } from './plugin.js';
import { canonical, fingerprint, sha256 } from './canonical.js';
import { Redactor, scrub } from './secrets.js';
import { PLUGIN_NAMES, loadFor } from '../plugins/index.js';
import { AuditLog, newRunId, readKey } from '../audit/chain.js';
import { acquireLock } from '../audit/lock.js';

export interface Prepared {
  loaded: LoadedDocument;
  doc: StateDocument;
  plugins: Map<string, Plugin>;
  /** sha256 of the document text */
  docHash: string;
  /** Accepted but not acted on (op-dbus forms): file:line:col, for validate/diff/apply to print. */
  warnings: Problem[];
}

export interface EngineOptions {
  settings: Settings;
  log: Logger;
  allowDestroy?: boolean;
  /** Leave these resources out of the plan (the daemon's per-resource backoff); their diffs stay in Computed.diffs. */
  hold?: (d: ResourceDiff) => boolean;
}

export async function prepareFile(file: string, settings?: Settings, vars?: VarSources): Promise<Prepared> {
  return prepareLoaded(await loadDocument(file), settings, vars);
}

/**
 * `settings`: where the semantic checks look on disk (--root, --systemd-unit-dir); env when not given.
 * `vars`: parameter values from outside the document (--var, --vars, OPD_VAR_*; see params.ts).
 */
export async function prepareLoaded(source: LoadedDocument, settings: Settings = {}, vars?: VarSources): Promise<Prepared> {
  const loaded = resolveParams(source, vars);
  // op-dbus forms: a bare plugin body (no `plugins`) may belong to any plugin, and plugin sections
  // written at the top level are refused by name: both need the plugins they could be
  const raw = loaded.raw;
  const sections = !isObj(raw) ? [] : isObj(raw.plugins) ? [...Object.keys(raw.plugins), ...Object.keys(raw)] : PLUGIN_NAMES;
  const plugins = await loadFor(sections); // validators load on first use: only the sections named
  const normalized = normalizeDocument(loaded, plugins);
  validateDocument(normalized, loaded);
  const doc = normalized as StateDocument;
  checkSemantics(doc, loaded, settings);
  const named = new Map([...plugins].filter(([n]) => n in doc.plugins));
  checkResourceCycles(collectEdges(named, doc.plugins));
  return { loaded, doc, plugins: named, docHash: sha256(loaded.text), warnings: locateProblems(loaded, loaded.warnings) };
}

/**
 * Keep only the named plugins (`--only net,firewall`): the other sections of the document are
 * validated but neither read nor planned. Unknown names are a usage error (exit 64).
 */
export function restrictPlugins(prep: Prepared, only: string[] | undefined, known: readonly string[]): Prepared {
  if (!only) return prep;
  const bad = only.filter((n) => !known.includes(n));
  if (bad.length) throw new OpdError('usage', `--only: unknown plugin ${bad.join(', ')}`, { hint: `plugins are: ${known.join(', ')}` });
  return { ...prep, plugins: new Map([...prep.plugins].filter(([n]) => only.includes(n))) };
}

function readCtx(o: EngineOptions, prep: Prepared): ReadContext {
  return { settings: o.settings, log: o.log, document: prep.doc.plugins };
}

/**
 * Read every named plugin's current state, in parallel. With `unreachable`, a plugin whose
 * backend is down (backend-unavailable) is left out and recorded there instead of failing the
 * whole read: what can be read is still planned (a down backend degrades, it does not blind).
 */
export async function readAll(prep: Prepared, o: EngineOptions, only?: Set<string>, unreachable?: Map<string, OpdError>): Promise<Record<string, Obj>> {
  const entries = await Promise.all(
    [...prep.plugins]
      .filter(([n]) => !only || only.has(n))
      .map(async ([name, p]) => {
        try {
          return [name, await p.read(readCtx(o, prep), prep.doc.plugins[name])] as const;
        } catch (err) {
          const e = toOpdError(err);
          if (!e.message.includes(name)) e.message = `${name}: ${e.message}`;
          if (unreachable && e.kind === 'backend-unavailable') {
            unreachable.set(name, e);
            return undefined;
          }
          throw e;
        }
      }),
  );
  return Object.fromEntries(entries.filter((x) => x !== undefined));
}

/** A plugin whose backend could not be read: its resources are unknown. */
export interface UnreachablePlugin {
  plugin: string;
  error: OpdError;
  /** addresses of the resources the document names for it */
  resources: string[];
}

function unreachableList(prep: Prepared, m: Map<string, OpdError>): UnreachablePlugin[] {
  return [...m]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([plugin, error]) => {
      const p = prep.plugins.get(plugin)!;
      const section = prep.doc.plugins[plugin] ?? {};
      const resources = p.collections.flatMap((c) => Object.keys(isObj(section[c]) ? (section[c] as Obj) : {}).map((n) => `${plugin}/${c}/${n}`)).sort();
      return { plugin, error, resources };
    });
}

/** The error `opd diff`/`opd apply` end with when backends are down (exit 69). */
export function unreachableError(u: UnreachablePlugin[], applied = false): OpdError {
  const names = u.map((x) => x.plugin).join(', ');
  const n = u.reduce((k, x) => k + x.resources.length, 0);
  return new OpdError('backend-unavailable', `${names} unreachable: ${n} resource${n === 1 ? '' : 's'} unknown${applied ? '' : '; nothing was applied'} (${u.map((x) => x.error.message).join('; ')})`, {
    hint: u.map((x) => x.error.hint).filter(Boolean).join('; ') || `start the backend${u.length > 1 ? 's' : ''} (opd doctor says why), or apply the reachable part with --partial`,
  });
}

export function diffAll(prep: Prepared, current: Record<string, Obj>, allowDestroy: boolean): ResourceDiff[] {
  const out: ResourceDiff[] = [];
  for (const [name, p] of [...prep.plugins].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!(name in current)) continue;
    out.push(...diffSection(p, prep.doc.plugins[name], current[name], allowDestroy));
  }
  return out;
}

export interface Computed {
  current: Record<string, Obj>;
  diffs: ResourceDiff[];
  plan: Plan;
  /** plugins whose backend is down: not read, not planned; their resources are unknown */
  unreachable: UnreachablePlugin[];
}

export async function computePlan(prep: Prepared, o: EngineOptions): Promise<Computed> {
  const down = new Map<string, OpdError>();
  const current = await readAll(prep, o, undefined, down);
  const diffs = diffAll(prep, current, o.allowDestroy ?? false);
  const planned = o.hold ? diffs.filter((d) => !o.hold!(d)) : diffs;
  const plan = buildPlan(prep.plugins, planned, collectEdges(prep.plugins, prep.doc.plugins), refreshes(prep, planned));
  return { current, diffs, plan, unreachable: unreachableList(prep, down) };
}

/** Changes that other resources' changes in this plan trigger (exec refresh_on), except for resources already planned. */
export function refreshes(prep: Prepared, planned: ResourceDiff[]): Change[] {
  const changed = new Set(planned.filter((d) => d.action !== 'noop').map((d) => d.address));
  if (!changed.size) return [];
  const out: Change[] = [];
  for (const [name, p] of [...prep.plugins].sort(([a], [b]) => (a < b ? -1 : 1)))
    if (p.refresh) out.push(...p.refresh(prep.doc.plugins[name], changed).filter((c) => !changed.has(c.resource)));
  return out;
}

export interface RunOptions extends EngineOptions {
  dryRun?: boolean;
  rollback?: boolean;
  auditLog: string;
  auditKey?: string;
  lockWaitMs?: number;
  /** Who/what triggered the run; a function decides once the plan is known (the daemon: `drift`). */
  trigger?: string | ((c: Computed) => string);
  signal?: AbortSignal;
  onChange?: (o: ChangeOutcome) => void;
  onRollback?: (o: ChangeOutcome) => void;
  onLockWait?: (pid: number) => void;
  /** Extra entries written right after run.start (the daemon's drift entries). */
  beforeApply?: (audit: AuditLog, run: string, c: Computed) => void;
  /**
   * A plugin whose backend is down: without `partial` nothing is applied (exit 69); with it the
   * reachable part is applied and the report lists the rest as unreachable.
   */
  partial?: boolean;
  /** Checked under the lock once the plan is computed, before anything is applied (a saved plan: throws when stale). */
  expect?: (c: Computed) => void;
  /** Extra fields for run.start (a saved plan's hash and file). */
  startFields?: Record<string, unknown>;
  /** Called after run.end of a successful run, with the audit still open (confirm-or-revert). */
  afterRun?: (audit: AuditLog, run: string, c: Computed, touched: Set<string>) => void | Promise<void>;
}

export interface VerificationFailure {
  address: string;
  ops: unknown[];
  /** The re-read itself failed (the backend went away during the run). */
  error?: string;
}

export interface RunReport {
  run?: string;
  status: 'ok' | 'noop' | 'failed' | 'planned' | 'blocked';
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
}

/** The key for hashing secrets: the audit key when configured, else a random one kept beside the log. */
export function secretKey(auditLog: string, keyFile?: string): Buffer {
  const k = readKey(keyFile);
  if (k) return k;
  const p = join(dirname(auditLog), 'secret.key');
  try {
    if (existsSync(p)) return readFileSync(p);
    ensureDir(dirname(p));
    const nk = randomBytes(32);
    writeFileSync(p, nk, { mode: 0o600, flag: 'wx' });
    return nk;
  } catch {
    return Buffer.from(sha256('opd-unkeyed:' + hostname()));
  }
}

function verifyDiffs(prep: Prepared, current: Record<string, Obj>, addresses: Set<string>): VerificationFailure[] {
  // shown to users: secret values in the ops are masked
  const shown = new Redactor();
  return diffAll(prep, current, true)
    .filter((d) => d.action !== 'noop' && addresses.has(d.address))
    .map((d) => ({ address: d.address, ops: shown.ops(d.plugin, d.collection, d.ops) }));
}

export async function run(prep: Prepared, o: RunOptions): Promise<RunReport> {
  const t0 = Date.now();
  if (o.dryRun) {
    const c = await computePlan(prep, o);
    return { status: c.plan.changes.length ? 'planned' : 'noop', plan: c.plan, outcomes: [], verification: [], durationMs: Date.now() - t0, unreachable: c.unreachable, computed: c };
  }
  const lock = await acquireLock(o.auditLog + '.lock', o.lockWaitMs ?? 300_000, (h) => o.onLockWait?.(h.pid));
  let audit: AuditLog | undefined;
  try {
    const key = readKey(o.auditKey);
    audit = AuditLog.open(o.auditLog, key);
    const recovered: string[] = [];
    const sys = newRunId();
    if (audit.recovery.tornBytes) {
      audit.append(sys, 'recovery', { torn_bytes: audit.recovery.tornBytes, kept_as: audit.recovery.tornSavedAs });
      recovered.push(`a torn last line (${audit.recovery.tornBytes} bytes) was kept aside in ${audit.recovery.tornSavedAs}`);
    }
    if (lock.recoveredFrom) recovered.push(`recovered the lock of a dead opd (pid ${lock.recoveredFrom})`);
    if (audit.interruptedRun) {
      audit.append(audit.interruptedRun, 'run.interrupted', { reason: 'the writer died before run.end' });
      recovered.push(`run ${audit.interruptedRun} was interrupted; the next plan re-reads the host`);
    }
    const c = await computePlan(prep, o);
    const { plan } = c;
    const unreachable = c.unreachable;
    if (unreachable.length && !o.partial) throw unreachableError(unreachable);
    o.expect?.(c);
    const blockers = plan.changes.filter((ch) => ch.blocker);
    if (blockers.length) {
      return { status: 'blocked', plan, outcomes: [], verification: [], durationMs: Date.now() - t0, audit: { seq: audit.lastSeq, recovered }, computed: c, unreachable };
    }
    if (!plan.changes.length) return { status: 'noop', plan, outcomes: [], verification: [], durationMs: Date.now() - t0, audit: { seq: audit.lastSeq, recovered }, computed: c, unreachable };
    audit.ensureSpace(plan.changes.length);
    const redact = new Redactor(secretKey(o.auditLog, o.auditKey));
    const runId = newRunId();
    const diffByAddr = new Map(c.diffs.map((d) => [d.address, d]));
    const planForAudit = planJSON({ changes: plan.changes.map((ch) => redactChange(ch, redact)), diffs: [] });
    audit.append(runId, 'run.start', {
      document: prep.docHash,
      plan: sha256(canonical(planForAudit)),
      file: prep.loaded.file,
      trigger: typeof o.trigger === 'function' ? o.trigger(c) : (o.trigger ?? 'cli'),
      user: safeUser(),
      host: hostname(),
      pid: process.pid,
      changes: plan.changes.length,
      ...(unreachable.length ? { unreachable: unreachable.map((u) => u.plugin) } : {}),
      ...o.startFields,
    });
    o.beforeApply?.(audit, runId, c);
    const a = audit;
    const pending: { run: string; type: string; fields: Record<string, unknown> }[] = [];
    const flush = () => {
      a.appendMany(pending.splice(0));
    };
    const fps = new Map<unknown, string | null>();
    const fp = (v: unknown, d: ResourceDiff) => {
      if (!fps.has(v)) fps.set(v, v === undefined ? null : fingerprint(redact.resource(d.plugin, d.collection, v)));
      return fps.get(v)!;
    };
    const record = (type: string) => (out: ChangeOutcome) => {
      const ch = out.change;
      const d = diffByAddr.get(ch.resource);
      pending.push({ run: runId, type, fields: {
        address: ch.address,
        resource: ch.resource,
        action: ch.action,
        summary: scrub(ch.summary, (v) => redact.mask(v)),
        ...(ch.reason ? { reason: scrub(ch.reason, (v) => redact.mask(v)) } : {}),
        ops: d ? redact.ops(d.plugin, d.collection, ch.ops ?? []) : [],
        // fingerprints of the redacted values: an unkeyed hash of a secret could be brute-forced
        before: d ? fp(d.current, d) : null,
        after: d ? fp(out.status === 'ok' ? d.desired : d.current, d) : null,
        result: out.status,
        ...(out.error ? { error: scrub(out.error.message, (v) => redact.mask(v)) } : {}),
        ...(out.output !== undefined ? { output: scrub(out.output, (v) => redact.mask(v)) } : {}),
        attempts: out.attempts,
      } });
    };
    const outcomes = await applyPlan(plan, prep.plugins, {
      settings: o.settings,
      log: o.log,
      allowDestroy: o.allowDestroy ?? false,
      signal: o.signal,
      onOutcome: (out) => {
        record('change')(out);
        o.onChange?.(out);
      },
      onWave: flush,
    });
    flush();
    const touched = new Set(outcomes.filter((x) => x.status === 'ok').map((x) => x.change.resource));
    // resources all of whose changes succeeded (one pass: 10,000 resources must not scan 10,000 outcomes each)
    const notOk = new Set(outcomes.filter((x) => x.status !== 'ok').map((x) => x.change.resource));
    const okResources = new Set([...touched].filter((r) => !notOk.has(r)));
    // verify: read again. A backend that went away during the run fails the verification of what
    // it holds (exit 1, run.end written), it does not abort the run unrecorded.
    let after: Record<string, Obj> | undefined;
    let verification: VerificationFailure[];
    try {
      after = await readAll(prep, o, new Set(outcomes.map((x) => x.change.plugin)));
      for (const [k, v] of Object.entries(c.current)) if (!(k in after)) after[k] = v;
      verification = verifyDiffs(prep, after, okResources);
    } catch (err) {
      const e = toOpdError(err);
      verification = [...okResources].sort().map((address) => ({ address, ops: [], error: e.message }));
      if (!verification.length) verification = [{ address: '(verify)', ops: [], error: e.message }];
    }
    let failed = outcomes.some((x) => x.status !== 'ok') || verification.length > 0;
    let rollback: RunReport['rollback'];
    if (failed && o.rollback && touched.size && after) {
      rollback = await doRollback(prep, o, c, after, touched, (out) => {
        record('rollback')(out);
        o.onRollback?.(out);
      }, flush);
      flush();
    }
    if (o.signal?.aborted) failed = true;
    const status = failed ? 'failed' : 'ok';
    audit.append(runId, 'run.end', {
      status,
      summary: countOutcomes(outcomes),
      verification: verification.map((v) => v.address),
      ...(rollback ? { rollback: countOutcomes(rollback.outcomes) } : {}),
      duration_ms: Date.now() - t0,
    });
    if (status === 'ok') await o.afterRun?.(audit, runId, c, touched);
    return { run: runId, status, plan, outcomes, verification, rollback, durationMs: Date.now() - t0, audit: { seq: audit.lastSeq, recovered }, computed: c, unreachable };
  } finally {
    audit?.close();
    lock.release();
  }
}

function redactChange(ch: PlannedChange, r: Redactor): PlannedChange {
  const [plugin, collection] = ch.resource.split('/');
  return Object.assign({}, ch, { ops: ch.ops ? r.ops(plugin, collection, ch.ops) : undefined, data: undefined });
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '?');
  }
}

export function countOutcomes(outcomes: ChangeOutcome[]): Record<string, number> {
  const s: Record<string, number> = { ok: 0, failed: 0, skipped: 0, refused: 0 };
  for (const o of outcomes) s[o.status] = (s[o.status] ?? 0) + 1;
  return s;
}

/**
 * Revert the resources this run touched to their pre-state, newest first: the plugin plans
 * the way back from what the host is now to what it was before (read at the start of the run).
 */
async function doRollback(
  prep: Prepared,
  o: RunOptions,
  c: Computed,
  now: Record<string, Obj>,
  touched: Set<string>,
  onOutcome: (x: ChangeOutcome) => void,
  onWave: () => void,
): Promise<NonNullable<RunReport['rollback']>> {
  return revertResources(prep, o, c.diffs.filter((d) => touched.has(d.address)), now, false, onOutcome, onWave);
}

/** What a resource was before a run (a pre-state), enough to put it back. */
export interface PreState {
  plugin: string;
  collection: string;
  name: string;
  address: string;
  /** projected to what the document names; undefined when it did not exist */
  current: Obj | undefined;
}

/**
 * Put resources back to their pre-state. `now` is what the host holds (read it when not given).
 * `exact`: compare through the document's shape, so that members the run added (an address,
 * a port the pre-state did not have) are removed too — confirm-or-revert undoes every change.
 */
export async function revertResources(
  prep: Prepared,
  o: EngineOptions,
  pre: PreState[],
  now: Record<string, Obj> | undefined,
  exact: boolean,
  onOutcome: (x: ChangeOutcome) => void,
  onWave: () => void,
): Promise<NonNullable<RunReport['rollback']>> {
  const cur = now ?? (await readAll(prep, o, new Set(pre.map((d) => d.plugin))));
  const diffs: ResourceDiff[] = [];
  const shapeOf = (d: PreState) => {
    const spec = (prep.doc.plugins[d.plugin]?.[d.collection] as Obj | undefined)?.[d.name];
    // compare like with like: what is there now, seen through the shape of what was there before
    return exact && isObj(spec) ? spec : (d.current ?? spec);
  };
  for (const d of pre) {
    const nowRaw = (cur[d.plugin]?.[d.collection] as Obj | undefined)?.[d.name];
    const before = d.current;
    const shape = shapeOf(d);
    const nowProj = nowRaw === undefined ? undefined : isObj(shape) ? (project(nowRaw, shape) as Obj) : (nowRaw as Obj);
    const base = { plugin: d.plugin, collection: d.collection, name: d.name, address: d.address, allowDestroy: true };
    if (before === undefined && nowProj !== undefined) diffs.push({ ...base, action: 'delete', current: nowProj, desired: undefined, ops: [{ op: 'remove', path: '' }] });
    else if (before !== undefined && nowProj === undefined) diffs.push({ ...base, action: 'create', current: undefined, desired: before, ops: compare({}, before) });
    else if (before !== undefined && nowProj !== undefined) {
      const ops = compare(nowProj, before);
      if (ops.length) diffs.push({ ...base, action: 'update', current: nowProj, desired: before, ops });
    }
  }
  const plan = buildPlan(prep.plugins, diffs, collectEdges(prep.plugins, prep.doc.plugins));
  // newest first: reverse the forward order where the graph allows it
  const outcomes = await applyPlan(plan, prep.plugins, { settings: o.settings, log: o.log, allowDestroy: true, onOutcome, onWave });
  const again = await readAll(prep, o, new Set(diffs.map((d) => d.plugin)));
  const verification: VerificationFailure[] = [];
  for (const d of diffs) {
    const got = (again[d.plugin]?.[d.collection] as Obj | undefined)?.[d.name];
    const want = pre.find((x) => x.address === d.address)?.current;
    const shape = exact ? shapeOf(pre.find((x) => x.address === d.address)!) : (want ?? shapeOf(pre.find((x) => x.address === d.address)!));
    const proj = got === undefined ? undefined : isObj(shape) ? project(got, shape) : got;
    if (canonical(proj) !== canonical(want)) verification.push({ address: d.address, ops: new Redactor().ops(d.plugin, d.collection, compare(proj ?? {}, want ?? {})) });
  }
  return { outcomes, verification };
}

export { summarize, planJSON };
