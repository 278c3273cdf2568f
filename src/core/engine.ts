/**
 * The pipeline up to the plan: load ─► normalize ─► validate ─► read ─► diff ─► plan.
 * `diff` and `apply --dry-run` stop here and never get an ApplyContext; a run (lock, audit,
 * apply, verify, rollback) is orchestrated above the core, in src/run/.
 */
import { mark } from './profile.js';
import type { Logger } from 'pino';
import { loadDocument, locateProblems, type LoadedDocument, type StateDocument } from './document.js';
import { checkNames, newRedactor, validateDocument } from './validate.js';
import { checkSecretArgv, type Redactor } from './secrets.js';
import { normalizeDocument } from './normalize.js';
import { paramsInfo, resolveParams, type VarSources } from './params.js';
import { checkSemantics } from './semantic.js';
import { diffSection, isObj } from './diff.js';
import { buildPlan, collectEdges, displayAddress, preflightChanges, type Plan } from './plan.js';
import { checkDependencies } from './deps.js';
import { OpdError, toOpdError, type Problem } from './errors.js';
import type { Change, Finding, Obj, Plugin, ReadContext, ResourceDiff, Settings } from './plugin.js';
import { sha256 } from './canonical.js';
import { distance } from 'fastest-levenshtein';
import type { PluginRegistry } from './registry.js';
import { readHostFacts, type HostFacts } from './facts.js';
import { applyWhen, type Excluded } from './when.js';

export interface Prepared {
  loaded: LoadedDocument;
  doc: StateDocument;
  plugins: Map<string, Plugin>;
  /** sha256 of the document text */
  docHash: string;
  /** Accepted but not acted on (op-dbus forms): file:line:col, for validate/diff/apply to print. */
  warnings: Problem[];
  /** The one Redactor of this document (display masks); `redactor.withKey(k)` for the audit trail. */
  redactor: Redactor;
  /** The host's facts, read once for this run (src/core/facts.ts): in the document, the plugins' reads and run.start. */
  facts: HostFacts;
  /** Resources whose `when:` does not hold on this host: not managed here (opd diff and apply name them). */
  excluded: Excluded[];
  /** Where the plugins came from: recovery reads resources of plugins the document no longer names. */
  registry?: PluginRegistry;
}

export interface EngineOptions {
  settings: Settings;
  log: Logger;
  allowDestroy?: boolean;
  /** Leave these resources out of the plan (the daemon's per-resource backoff); their diffs stay in Computed.diffs. */
  hold?: (d: ResourceDiff) => boolean;
  /**
   * A run that may apply in two stages (src/run/index.ts). `first`: an unreachable plugin whose
   * resources depend on resources this plan changes (a database whose server the same document
   * installs and starts) waits for the second stage, and so does every resource that depends on
   * its resources; they are left out of this plan (Computed.waiting, Computed.held). `second`:
   * whatever is still unreachable then holds back what depends on it.
   */
  staged?: 'first' | 'second';
  /**
   * `--target ADDRESS…`: plan only these resources (an address, its display form without `//`,
   * or a prefix: `ovs`, `files/paths/etc`) and what they depend on, transitively.
   */
  targets?: string[];
}

export async function prepareFile(
  registry: PluginRegistry,
  file: string,
  settings?: Settings,
  vars?: VarSources,
  facts?: HostFacts,
): Promise<Prepared> {
  return prepareLoaded(registry, await loadDocument(file), settings, vars, facts);
}

/**
 * `registry`: the plugins to load from (src/plugins/index.ts for opd itself; the caller passes it).
 * `settings`: where the semantic checks look on disk (--root, --systemd-unit-dir); env when not given.
 * `vars`: parameter values from outside the document (--var, --vars, OPD_VAR_*; see params.ts).
 * `facts`: the host's facts (read here when not given; a test passes a faked host's).
 */
export async function prepareLoaded(
  registry: PluginRegistry,
  source: LoadedDocument,
  settings: Settings = {},
  vars?: VarSources,
  facts: HostFacts = readHostFacts(),
): Promise<Prepared> {
  // __proto__ & co. would be dropped or misread on the way (parameters may make names: checked again)
  checkNames(source.raw, source);
  const loaded = resolveParams(source, vars, facts);
  checkNames(loaded.raw, loaded);
  mark('parameters');
  // op-dbus forms: a bare plugin body (no `plugins`) may belong to any plugin, and plugin sections
  // written at the top level are refused by name: both need the plugins they could be
  const raw = loaded.raw;
  const sections = !isObj(raw)
    ? []
    : isObj(raw.plugins)
      ? [...Object.keys(raw.plugins), ...Object.keys(raw)]
      : [...registry.names];
  const plugins = await registry.loadFor(sections); // validators load on first use: only the sections named
  mark('plugin modules');
  const normalized = normalizeDocument(loaded, plugins, registry.manifests);
  checkNames(normalized, loaded); // names of op-dbus lists became keys
  mark('normalize');
  validateDocument(normalized, loaded);
  mark('validate (schema)');
  const doc = normalized as StateDocument;
  const excluded = applyWhen(doc, plugins, facts);
  const redactor = newRedactor();
  const { secrets, warnings } = paramsInfo(loaded);
  checkSecretArgv(redactor, doc, loaded, secrets);
  checkSemantics(doc, loaded, settings, registry.rules);
  mark('semantic checks');
  const named = new Map([...plugins].filter(([n]) => n in doc.plugins));
  // the edges the plan orders by: an undeclared depends_on or a cycle is a mistake of the document
  checkDependencies(collectEdges(named, doc.plugins), named, doc, loaded);
  mark('dependency graph');
  let docHash: string | undefined;
  return {
    loaded,
    doc,
    plugins: named,
    // made when first asked (validate never asks: no crypto at start-up)
    get docHash() {
      return (docHash ??= sha256(loaded.text));
    },
    warnings: [...warnings, ...locateProblems(loaded, loaded.warnings)],
    redactor,
    facts,
    excluded,
    registry,
  };
}

/**
 * Keep only the named plugins (`--only net,firewall`): the other sections of the document are
 * validated but neither read nor planned. Unknown names are a usage error (exit 64).
 */
export function restrictPlugins(prep: Prepared, only: string[] | undefined, known: readonly string[]): Prepared {
  if (!only) return prep;
  const bad = only.filter((n) => !known.includes(n));
  if (bad.length)
    throw new OpdError('usage', `--only: unknown plugin ${bad.join(', ')}`, {
      hint: `plugins are: ${known.join(', ')}`,
    });
  return { ...prep, plugins: new Map([...prep.plugins].filter(([n]) => only.includes(n))) };
}

function readCtx(o: EngineOptions, prep: Prepared): ReadContext {
  return { settings: o.settings, log: o.log, document: prep.doc.plugins, facts: prep.facts };
}

/**
 * Read every named plugin's current state, in parallel. With `unreachable`, a plugin whose
 * backend is down (backend-unavailable) is left out and recorded there instead of failing the
 * whole read: what can be read is still planned (a down backend degrades, it does not blind).
 */
export async function readAll(
  prep: Prepared,
  o: EngineOptions,
  only?: Set<string>,
  unreachable?: Map<string, OpdError>,
): Promise<Record<string, Obj>> {
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
      const resources = p.collections
        .flatMap((c) => Object.keys(isObj(section[c]) ? (section[c] as Obj) : {}).map((n) => `${plugin}/${c}/${n}`))
        .sort();
      return { plugin, error, resources };
    });
}

/** The error `opd diff`/`opd apply` end with when backends are down (exit 69). */
export function unreachableError(u: UnreachablePlugin[], applied = false): OpdError {
  const names = u.map((x) => x.plugin).join(', ');
  const n = u.reduce((k, x) => k + x.resources.length, 0);
  return new OpdError(
    'backend-unavailable',
    `${names} unreachable: ${n} resource${n === 1 ? '' : 's'} unknown${applied ? '' : '; nothing was applied'} (${u.map((x) => x.error.message).join('; ')})`,
    {
      hint:
        u
          .map((x) => x.error.hint)
          .filter(Boolean)
          .join('; ') ||
        `start the backend${u.length > 1 ? 's' : ''} (opd doctor says why), or apply the reachable part with --partial`,
    },
  );
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
  /** (staged) the unreachable plugins that wait for this plan: a second stage reads and applies them */
  waiting: UnreachablePlugin[];
  /** (staged) resources left out of this plan because they depend on a waiting plugin's resources */
  held: string[];
  /** recommendations the host does not meet (checks' `recommend:`): warnings, never blockers */
  advisories: Finding[];
}

/** The resource (plugin/collection/name) an address belongs to, among `all`. */
function resourceOf(address: string, all: Set<string>): string | undefined {
  for (let a = address; a.split('/').length >= 3; a = a.slice(0, a.lastIndexOf('/'))) if (all.has(a)) return a;
  return undefined;
}

/** Which unreachable plugins wait on this plan, and which resources wait with them (EngineOptions.staged). */
export function staging(
  prep: Prepared,
  diffs: ResourceDiff[],
  unreachable: UnreachablePlugin[],
  stage: 'first' | 'second',
): { waiting: UnreachablePlugin[]; held: Set<string> } {
  const pending = new Set(diffs.filter((d) => d.action !== 'noop').map((d) => d.address));
  if ((stage === 'first' && !pending.size) || !unreachable.length) return { waiting: [], held: new Set() };
  const all = new Set<string>();
  for (const [name, p] of prep.plugins)
    for (const c of p.collections) {
      const coll = prep.doc.plugins[name]?.[c];
      if (isObj(coll)) for (const r of Object.keys(coll)) all.add(`${name}/${c}/${r}`);
    }
  // edges between resources; an edge to a prefix (`ovs`: every resource of the plugin) to each of them
  const under = (a: string) => {
    const r = resourceOf(a, all);
    return r ? [r] : [...all].filter((x) => x.startsWith(a + '/'));
  };
  const edges = collectEdges(prep.plugins, prep.doc.plugins).flatMap((e) =>
    under(e.from).flatMap((from) =>
      under(e.to)
        .filter((to) => to !== from)
        .map((to) => ({ from, to })),
    ),
  );
  const waiting =
    stage === 'second'
      ? unreachable
      : unreachable.filter((u) => {
          const mine = new Set(u.resources);
          return edges.some((e) => mine.has(e.from) && pending.has(e.to));
        });
  // everything that depends, directly or not, on a waiting plugin's resources waits too
  const held = new Set(waiting.flatMap((u) => u.resources));
  for (let grew = true; grew;) {
    grew = false;
    for (const e of edges)
      if (held.has(e.to) && !held.has(e.from)) {
        held.add(e.from);
        grew = true;
      }
  }
  for (const u of waiting) for (const r of u.resources) held.delete(r);
  return { waiting, held };
}

/** Whether resource address `r` is named by target `t`: exactly, in display form, or under it as a prefix. */
function targets(t: string, r: string): boolean {
  const shown = displayAddress(r);
  const tt = t.replace(/\/+$/, '');
  return r === tt || shown === tt || r.startsWith(tt + '/') || shown.startsWith(tt + '/') || tt.startsWith(r + '/');
}

/**
 * The resources `--target` selects: those the targets name, and everything they depend on
 * (explicit depends_on and the plugins' implicit edges), transitively. A target that names no
 * resource of the document is a usage error (exit 64).
 */
export function targetClosure(prep: Prepared, all: string[], wanted: string[]): Set<string> {
  const selected = new Set<string>();
  const unknown: string[] = [];
  for (const t of wanted) {
    const hit = all.filter((r) => targets(t, r));
    if (!hit.length) unknown.push(t);
    for (const r of hit) selected.add(r);
  }
  if (unknown.length) {
    const near = (t: string) =>
      [...all].map(displayAddress).sort((a, b) => distance(t, a) - distance(t, b) || (a < b ? -1 : 1))[0];
    throw new OpdError('usage', `--target: ${unknown.join(', ')} names no resource of the document`, {
      hint: all.length
        ? `did you mean ${near(unknown[0])}? Addresses are plugin/collection/name (opd diff lists them)`
        : 'the document names no resources',
    });
  }
  // an edge's ends are resources or parts of one (systemd/units/x.service/enabled): the resource
  // is the longest address it starts with (a file's name holds slashes: /etc/x is not under /etc)
  const owner = (a: string): string | undefined => {
    let best: string | undefined;
    for (const r of all) if ((a === r || a.startsWith(r + '/')) && (!best || r.length > best.length)) best = r;
    return best;
  };
  const edges = collectEdges(prep.plugins, prep.doc.plugins)
    .map((e) => [owner(e.from), owner(e.to)] as const)
    .filter((e): e is readonly [string, string] => e[0] !== undefined && e[1] !== undefined && e[0] !== e[1]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [from, to] of edges)
      if (selected.has(from) && !selected.has(to)) {
        selected.add(to);
        grew = true;
      }
  }
  return selected;
}

export async function computePlan(prep: Prepared, o: EngineOptions): Promise<Computed> {
  const down = new Map<string, OpdError>();
  const current = await readAll(prep, o, undefined, down);
  mark('read (backends)');
  const diffs = diffAll(prep, current, o.allowDestroy ?? false);
  const unreachable = unreachableList(prep, down);
  const { waiting, held } = o.staged
    ? staging(prep, diffs, unreachable, o.staged)
    : { waiting: [], held: new Set<string>() };
  const selected = o.targets?.length ? targetClosure(prep, documentAddresses(prep), o.targets) : undefined;
  const planned = diffs.filter((d) => !held.has(d.address) && !o.hold?.(d) && (!selected || selected.has(d.address)));
  const advisories: Finding[] = [];
  const blocks = (await preflightChanges(prep.plugins, readCtx(o, prep), prep.doc.plugins, advisories)).filter(
    (b) => !selected || selected.has(b.resource),
  );
  const plan = buildPlan(prep.plugins, planned, collectEdges(prep.plugins, prep.doc.plugins), [
    ...blocks,
    ...refreshes(prep, planned),
  ]);
  mark('diff and plan');
  return { current, diffs, plan, unreachable, waiting, held: [...held].sort(), advisories };
}

/** Every resource address the document names (of the plugins in this run). */
export function documentAddresses(prep: Prepared): string[] {
  const out: string[] = [];
  for (const [name, p] of prep.plugins) {
    const section = prep.doc.plugins[name] ?? {};
    for (const c of p.collections)
      for (const n of Object.keys(isObj(section[c]) ? (section[c] as Obj) : {})) out.push(`${name}/${c}/${n}`);
  }
  return out.sort();
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
