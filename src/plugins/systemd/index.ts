/**
 * systemd: units through org.freedesktop.systemd1 on the system bus (never systemctl).
 * Read: one ListUnitsByNames and one ListUnitFilesByPatterns for all named units (plus one
 * GetUnitFileState per template instance, which unit-file listings cannot show), files via
 * node:fs. Apply: files, then batched Enable/Disable/Mask/UnmaskUnitFiles, then ONE
 * Manager.Reload for the batch, then jobs awaited through their JobRemoved signal.
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest, { TUNABLES } from './manifest.js';
import { TUNABLES as CORE_TUNABLES } from '../../core/tunables.js';
import type { Change, ChangeResult, Edge, Obj, Plugin, ReadContext } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { arrayToMap } from '../../core/normalize.js';
import { isObj } from '../../core/diff.js';
import { busAddress, onSignal } from '../../dbus.js';
import { runRead } from '../../exec.js';
import {
  DEST,
  MANAGER,
  JobWaiter,
  disableUnitFiles,
  enableUnitFiles,
  listUnits,
  listUnitsByNames,
  listUnitsByPatterns,
  managerInfo,
  maskUnitFiles,
  reload,
  resetFailed,
  subscribe,
  unitFileState,
  unitFileStates,
  unmaskUnitFiles,
  type JobKind,
  type UnitInfo,
} from './bus.js';
import { ownedUnits, readUnitFiles, removeUnitPath, writeUnitPath, type UnitFiles } from './files.js';
import {
  activeOf,
  enabledOf,
  exactPattern,
  isInstance,
  isRunning,
  isTemplate,
  maskedOf,
  rel,
  templateOf,
  unitDir,
  unitHostDir,
  unitObjectPath,
} from './names.js';
import { planUnit, type SystemdChangeData, type SystemdOp } from './plan.js';
import type { SystemdDoc, Unit } from './section.gen.js';

/** A unit as read: systemd's ActiveState may be any of its states (failed, activating, …), not only the two a document names. */
export type UnitState = Omit<Unit, 'active_state'> & { active_state?: string };
/** The section's type, generated from schema/systemd.schema.json (npm run gen:types). */
export type SystemdSection = Omit<SystemdDoc, 'units'> & { units?: Record<string, UnitState> } & Obj;

/** How long to wait for one job's JobRemoved (systemd's own start timeouts are shorter). */
const JOB_TIMEOUT_MS = TUNABLES.systemdJobMs;
/** runState key: unit files or their enablement changed since the last Reload. */
const RELOAD_PENDING = 'systemd:reload-pending';

function unitsOf(section: unknown): Record<string, Obj> {
  return isObj(section) && isObj(section.units) ? (section.units as Record<string, Obj>) : {};
}

/** Current state of one unit in the section's shape; undefined when there is nothing of it. */
function currentUnit(
  name: string,
  spec: UnitState | undefined,
  info: UnitInfo | undefined,
  fileState: string | undefined,
  files: UnitFiles,
): UnitState | undefined {
  const loaded =
    info !== undefined &&
    (info.loadState !== 'not-found' || isRunning(info.activeState) || info.activeState === 'failed');
  const hasFiles = files.unitFile !== undefined || Object.keys(files.dropins).length > 0;
  if (!loaded && fileState === undefined && !hasFiles) return undefined;
  const active = isTemplate(name) ? undefined : activeOf(info?.activeState ?? 'inactive');
  if (spec?.state === 'absent') {
    // present only while something remains to undo: running, enabled, or files opd wrote
    const enabled = fileState === 'enabled';
    const ownedFile = files.owned.includes(rel.unitFile(name)) && files.unitFile !== undefined;
    const ownedDropins = Object.fromEntries(
      Object.entries(files.dropins).filter(([n]) => files.owned.includes(rel.dropin(name, n))),
    );
    if (!isRunning(active) && active !== 'failed' && !enabled && !ownedFile && !Object.keys(ownedDropins).length)
      return undefined;
    return {
      ...(active !== undefined ? { active_state: active } : {}),
      enabled,
      ...(ownedFile ? { unit_file: files.unitFile } : {}),
      ...(Object.keys(ownedDropins).length ? { dropins: ownedDropins } : {}),
    };
  }
  const cur: UnitState = {};
  if (fileState !== undefined) {
    cur.enabled = enabledOf(fileState);
    cur.masked = maskedOf(fileState);
  } else cur.masked = info?.loadState === 'masked';
  if (active !== undefined) cur.active_state = active;
  if (files.unitFile !== undefined) cur.unit_file = files.unitFile;
  cur.dropins = files.dropins;
  // a behaviour switch, not host state: echo it so that it never shows as a difference
  if (spec?.reload_on_change !== undefined) cur.reload_on_change = spec.reload_on_change;
  return cur;
}

function needsFileState(spec: UnitState | undefined): boolean {
  return spec === undefined || 'enabled' in spec || 'masked' in spec || spec.state === 'absent';
}

/** Batched read of the named units: a constant number of D-Bus calls (plus one per template instance). */
async function readUnits(
  ctx: ReadContext,
  specs: Record<string, UnitState | undefined>,
): Promise<Record<string, UnitState>> {
  const names = Object.keys(specs).sort();
  if (!names.length) return {};
  const dir = unitHostDir(ctx.settings);
  // unit-file states cost systemd a scan of every .wants/ directory per unit: ask only for
  // the units whose enablement or mask the document names (or that must go)
  const needState = names.filter((n) => needsFileState(specs[n]));
  const [infos, states, files] = await Promise.all([
    listUnitsByNames(
      ctx.settings,
      names.filter((n) => !isTemplate(n)),
    ),
    unitFileStates(ctx.settings, needState),
    Promise.all(names.map((n) => readUnitFiles(dir, n))),
  ]);
  const missing = needState.filter((n) => isInstance(n) && !states.has(n));
  const extra = await Promise.all(missing.map((n) => unitFileState(ctx.settings, n)));
  missing.forEach((n, i) => {
    if (extra[i] !== undefined) states.set(n, extra[i]!);
  });
  const out: Record<string, UnitState> = {};
  names.forEach((n, i) => {
    const cur = currentUnit(n, specs[n], infos.get(n), states.get(n), files[i]);
    if (cur) out[n] = cur;
  });
  return out;
}

/** The unit as `opd show` prints it: only what feeding it back would keep as is. */
function showUnit(
  name: string,
  info: UnitInfo | undefined,
  fileState: string | undefined,
  files: UnitFiles,
): UnitState {
  const out: UnitState = {};
  if (fileState !== undefined && maskedOf(fileState)) out.masked = true;
  else {
    if (fileState === 'enabled' || fileState === 'enabled-runtime') out.enabled = true;
    else if (fileState === 'disabled') out.enabled = false;
    if (!isTemplate(name) && info) {
      const a = activeOf(info.activeState);
      if (a === 'active' || a === 'inactive') out.active_state = a;
    }
  }
  if (files.owned.includes(rel.unitFile(name)) && files.unitFile !== undefined && !out.masked)
    out.unit_file = files.unitFile;
  const dropins = Object.fromEntries(
    Object.entries(files.dropins).filter(([n]) => files.owned.includes(rel.dropin(name, n))),
  );
  if (Object.keys(dropins).length) out.dropins = dropins;
  return out;
}

async function journalTail(unit: string): Promise<string> {
  try {
    const r = await runRead('journalctl', [`--unit=${unit}`, '-n', '20', '--no-pager', '--quiet', '-o', 'short-iso'], {
      timeout: CORE_TUNABLES.journalMs,
      okCodes: [0, 1],
      backend: 'journalctl',
      installHint: 'install systemd (journalctl)',
    });
    const lines = r.stdout.trimEnd().split('\n').filter(Boolean);
    return lines.length ? lines.map((l) => `  | ${l}`).join('\n') : '  | (the journal has no lines for this unit)';
  } catch (err) {
    return `  | (no journal: ${toOpdError(err).message})`;
  }
}

const OK_RESULTS: Record<string, string[]> = {
  'try-restart': ['done', 'skipped'],
  'reload-or-try-restart': ['done', 'skipped'],
  stop: ['done', 'skipped'],
};

async function jobError(unit: string, verb: string, result: string, address: string): Promise<OpdError> {
  const tail = await journalTail(unit);
  const what = result.includes(' ')
    ? result
    : result === 'dependency'
      ? 'a unit it depends on failed'
      : result === 'timeout'
        ? 'systemd timed out'
        : result === 'canceled'
          ? 'another job replaced it'
          : `job result: ${result}`;
  return new OpdError('backend-failed', `${verb} of ${unit} failed (${what}); last lines of its journal:\n${tail}`, {
    address,
    hint: `fix the unit (its files or what it runs) and apply again; journalctl -u ${unit} shows the whole log`,
  });
}

/** StartUnit & co. refuse before queuing a job: say what to do about it. */
function explainJobCallError(err: unknown, unit: string, address: string): unknown {
  const e = toOpdError(err);
  const m =
    /\.(NoSuchUnit|UnitMasked|LoadFailed|OnlyByDependency|JobTypeNotApplicable|TransactionIsDestructive): (.*)$/.exec(
      e.message,
    );
  if (!m) return e;
  const hints: Record<string, string> = {
    NoSuchUnit: `write its unit_file, or install the package that ships ${unit}`,
    UnitMasked: `unmask it first (masked: false)`,
    LoadFailed: `its unit file has errors: journalctl -u ${unit} says which; fix unit_file or drop-ins`,
    OnlyByDependency: `${unit} refuses manual start/stop (RefuseManualStart=/RefuseManualStop=): start what pulls it in instead`,
    JobTypeNotApplicable: `${unit} cannot do that (e.g. reload without ExecReload=): drop reload_on_change`,
    TransactionIsDestructive: 'another job conflicts with this one: try again when systemd is idle',
  };
  return new OpdError(m[1] === 'TransactionIsDestructive' ? 'backend-busy' : 'backend-failed', `${unit}: ${m[2]}`, {
    address,
    hint: hints[m[1]],
  });
}

function explainUnitFileError(kind: string, err: unknown, address: string): unknown {
  const e = toOpdError(err);
  if (kind === 'mask' && /UnitExists|already exists/.test(e.message))
    return new OpdError('backend-failed', `cannot mask: ${e.message.replace(/^.*UnitExists: /, '')}`, {
      address,
      hint: 'a mask is a symlink to /dev/null at that path, and a unit file sits there: mask units shipped by packages, or remove this one with state: absent',
    });
  return e;
}

const plugin: Plugin<SystemdSection, SystemdChangeData> = {
  ...sectionSpec(manifest),

  normalize(section, ctx) {
    if (!isObj(section)) return section;
    const out: Obj = { ...section };
    out.units = arrayToMap(out.units, 'name', '/plugins/systemd/units', ctx);
    if (isObj(out.units)) {
      const units: Obj = {};
      for (const [n, spec] of Object.entries(out.units)) {
        // a masked unit is also stopped: say so, so that the plan stops it and verify checks it
        if (
          isObj(spec) &&
          spec.masked === true &&
          spec.active_state === undefined &&
          spec.state !== 'absent' &&
          !isTemplate(n)
        )
          units[n] = { ...spec, active_state: 'inactive' };
        else units[n] = spec;
      }
      out.units = units;
    }
    return out;
  },

  async read(ctx, desired) {
    return { units: await readUnits(ctx, desired.units ?? {}) };
  },

  plan: planUnit,

  async apply(ctx, changes) {
    const dir = unitDir(ctx.settings);
    const results = new Map<Change<SystemdChangeData>, ChangeResult>();
    const opOf = (c: Change<SystemdChangeData>) => c.data!.op;
    const fail = (c: Change<SystemdChangeData>, e: unknown) =>
      results.set(c, { address: c.address, status: 'failed', error: toOpdError(e) });
    const ok = (c: Change<SystemdChangeData>) => results.set(c, { address: c.address, status: 'ok' });
    const of = (pred: (op: SystemdOp) => boolean) => changes.filter((c) => pred(opOf(c)));
    const jobs = of((op) => op.kind === 'job');
    let waiter: JobWaiter | undefined;
    // a Reload is due before the next job, or at the end of the run (flush)
    const touched = () => ctx.runState.set(RELOAD_PENDING, true);

    const runJobs = async (list: Change<SystemdChangeData>[]) => {
      const started: Change<SystemdChangeData>[] = [];
      await Promise.all(
        list.map(async (c) => {
          const op = opOf(c) as Extract<SystemdOp, { kind: 'job' }>;
          try {
            if (op.job === 'reset-failed') {
              await resetFailed(ctx, op.unit);
              ok(c);
              return;
            }
            if (op.job === 'restart-instances') {
              const [pre, suf] = [op.unit.slice(0, op.unit.indexOf('@') + 1), op.unit.slice(op.unit.lastIndexOf('.'))];
              const own = new Set(jobs.map((j) => opOf(j).unit));
              const running = (
                await listUnitsByPatterns(
                  ctx.settings,
                  ['active', 'reloading', 'activating'],
                  [`${exactPattern(pre)}*${exactPattern(suf)}`],
                )
              ).filter((u) => !own.has(u.name));
              const verb: JobKind = op.reload ? 'reload-or-try-restart' : 'try-restart';
              const res = await Promise.all(
                running.map(async (u) => [u.name, await waiter!.run(verb, u.name, JOB_TIMEOUT_MS)] as const),
              );
              const bad = res.find(([, r]) => !OK_RESULTS[verb].includes(r));
              if (bad) fail(c, await jobError(bad[0], verb, bad[1], c.address));
              else ok(c);
              return;
            }
            const result = await waiter!.run(op.job as JobKind, op.unit, JOB_TIMEOUT_MS);
            if ((OK_RESULTS[op.job] ?? ['done']).includes(result)) {
              ok(c);
              if (op.job !== 'stop') started.push(c);
            } else fail(c, await jobError(op.unit, op.job, result, c.address));
          } catch (err) {
            fail(c, explainJobCallError(err, opOf(c).unit, c.address));
          }
        }),
      );
      // a job is done when the unit started; a service that dies right after shows up here
      if (started.length) {
        const now = await listUnitsByNames(
          ctx.settings,
          started.map((c) => opOf(c).unit),
        ).catch((err) => {
          ctx.log.warn(
            { plugin: 'systemd', err: toOpdError(err).message },
            'systemd: could not check the units just started',
          );
          return new Map<string, UnitInfo>();
        });
        for (const c of started) {
          const u = opOf(c).unit;
          if (now.get(u)?.activeState === 'failed') {
            const e = await jobError(
              u,
              (opOf(c) as { job: string }).job,
              'the unit failed right after it started',
              c.address,
            );
            results.delete(c);
            fail(c, e);
          }
        }
      }
    };

    /** One D-Bus call for all units of a kind; on failure, one call each to find which. */
    const unitFileOp = async (
      kind: 'enable' | 'disable' | 'mask' | 'unmask',
      fn: (names: string[]) => Promise<unknown>,
    ) => {
      const list = of((op) => op.kind === kind);
      if (!list.length) return;
      const names = [...new Set(list.map((c) => opOf(c).unit))];
      try {
        const r = await fn(names);
        touched();
        if (kind === 'enable' && isObj(r)) {
          // a unit whose enabling linked nothing has no [Install] section: say so now
          const linked = (r.changes as [string, string, string][]).flatMap(([, file, dest]) => [file, dest]);
          for (const c of list) {
            const u = opOf(c).unit;
            // linked nothing because it is enabled already (a package's script enabled it since the plan)
            const already = async () => (await unitFileState(ctx.settings, u)) === 'enabled';
            if ((r.installInfo === false || !linked.some((p) => p.endsWith('/' + u))) && !(await already()))
              fail(
                c,
                new OpdError(
                  'backend-failed',
                  `${u} cannot be enabled: its unit file has no [Install] section (WantedBy=…)`,
                  {
                    address: c.address,
                    hint: 'add an [Install] section with WantedBy= to the unit file, or drop `enabled` for this unit',
                  },
                ),
              );
            else ok(c);
          }
          return;
        }
        list.forEach(ok);
      } catch (err) {
        if (list.length === 1) return fail(list[0], explainUnitFileError(kind, err, list[0].address));
        for (const c of list) {
          try {
            await fn([opOf(c).unit]);
            ok(c);
            touched();
          } catch (e) {
            fail(c, explainUnitFileError(kind, e, c.address));
          }
        }
      }
    };

    const t0 = Date.now();
    const phase = (name: string) =>
      ctx.log.debug({ plugin: 'systemd', phase: name, ms: Date.now() - t0 }, 'systemd: apply phase done');
    try {
      if (jobs.length) waiter = await JobWaiter.open(ctx);
      // 1. stop what goes away or gets masked
      await runJobs(jobs.filter((c) => (opOf(c) as { early?: boolean }).early));
      phase('early stops');
      // 2. disable and unmask (a mask sits where a unit file goes)
      await unitFileOp('disable', (n) => disableUnitFiles(ctx, n));
      await unitFileOp('unmask', (n) => unmaskUnitFiles(ctx, n));
      phase('disable/unmask');
      // 3. files: one unit after another within a unit (its ownership record), units in parallel
      const byUnit = new Map<string, Change<SystemdChangeData>[]>();
      for (const c of of((op) => op.kind === 'write' || op.kind === 'remove'))
        byUnit.set(opOf(c).unit, [...(byUnit.get(opOf(c).unit) ?? []), c]);
      await Promise.all(
        [...byUnit.values()].map(async (list) => {
          for (const c of list) {
            const op = opOf(c);
            try {
              if (op.kind === 'write') await writeUnitPath(ctx, dir, op.unit, op.rel, op.content);
              else if (op.kind === 'remove') await removeUnitPath(ctx, dir, op.unit, op.rel);
              ok(c);
              touched();
            } catch (err) {
              fail(c, err);
            }
          }
        }),
      );
      phase('files');
      // 4. enable and mask
      await unitFileOp('enable', (n) => enableUnitFiles(ctx, n));
      await unitFileOp('mask', (n) => maskUnitFiles(ctx, n));
      phase('enable/mask');
      // 5. one Reload before the jobs (the rest waits for flush: one Reload per run)
      if (jobs.some((c) => !results.has(c)) && ctx.runState.get(RELOAD_PENDING)) {
        try {
          ctx.runState.delete(RELOAD_PENDING);
          await reload(ctx);
        } catch (err) {
          const e = toOpdError(err);
          for (const c of jobs)
            if (!results.has(c))
              fail(
                c,
                new OpdError(
                  e.retryable ? 'backend-busy' : 'backend-failed',
                  `systemd did not reload its configuration: ${e.message}`,
                  { address: c.address },
                ),
              );
        }
      }
      phase('reload');
      // 6. start, restart, reload, stop
      await runJobs(jobs.filter((c) => !results.has(c)));
      phase('jobs');
    } finally {
      await waiter?.dispose();
    }
    return changes.map(
      (c) =>
        results.get(c) ?? {
          address: c.address,
          status: 'failed' as const,
          error: new OpdError('bug', `systemd: no outcome for ${c.address}`),
        },
    );
  },

  /** The run's last systemd batch is done: Reload if unit files changed since the last one (UnitFileState is stale until then). */
  async flush(ctx) {
    if (!ctx.runState.get(RELOAD_PENDING)) return;
    ctx.runState.delete(RELOAD_PENDING);
    await reload(ctx);
  },

  /**
   * Implicit dependencies. Within this section: an instance follows its template. Across
   * plugins (declared now, wired when the core passes the whole desired document as the
   * second argument): a unit follows the `files/paths/<path>` resources its unit file and
   * drop-ins reference, and `packages/installed/<pkg>` when the document installs a package
   * named like the unit. Edges only ever point at resources the document names.
   */
  edges(desired, document) {
    return unitEdges(desired, document);
  },

  async show(ctx, opts) {
    const dir = unitHostDir(ctx.settings);
    const owned = await ownedUnits(dir);
    let infos: Map<string, UnitInfo>;
    let states: Map<string, string>;
    let names: string[];
    if (opts.all) {
      const [list, st] = await Promise.all([listUnits(ctx.settings), unitFileStates(ctx.settings, undefined)]);
      infos = new Map(list.filter((u) => u.loadState === 'loaded' || u.loadState === 'masked').map((u) => [u.name, u]));
      states = st;
      names = [...new Set([...infos.keys(), ...owned])].filter((n) => /^[^/]+$/.test(n) && isShowable(n)).sort();
    } else {
      names = owned;
      [infos, states] = await Promise.all([
        listUnitsByNames(
          ctx.settings,
          owned.filter((n) => !isTemplate(n)),
        ),
        unitFileStates(ctx.settings, owned),
      ]);
    }
    const files = await Promise.all(names.map((n) => readUnitFiles(dir, n)));
    const units: Record<string, UnitState> = {};
    names.forEach((n, i) => {
      const u = showUnit(n, infos.get(n), states.get(n), files[i]);
      if (u) units[n] = u;
    });
    return { units };
  },

  async watch(ctx, onDrift) {
    const section = isObj(ctx.desired.plugins) ? ctx.desired.plugins.systemd : ctx.desired;
    const named = Object.keys(unitsOf(section));
    const byPath = new Map(named.map((n) => [unitObjectPath(n), `systemd/units/${n}`]));
    const byName = new Map(named.map((n) => [n, `systemd/units/${n}`]));
    const subs = await Promise.all([
      onSignal(
        ctx.settings,
        {
          sender: DEST,
          interface: 'org.freedesktop.DBus.Properties',
          member: 'PropertiesChanged',
          pathNamespace: '/org/freedesktop/systemd1/unit',
        },
        (m) => {
          const a = byPath.get(m.path);
          if (a) onDrift(a);
        },
      ),
      onSignal(ctx.settings, { sender: DEST, interface: MANAGER, member: 'JobRemoved' }, (m) => {
        const a = byName.get(String(m.body[2]));
        if (a) onDrift(a);
      }),
      onSignal(ctx.settings, { sender: DEST, interface: MANAGER, member: 'UnitFilesChanged' }, () => onDrift()),
    ]);
    await subscribe(ctx.settings);
    return { dispose: async () => void (await Promise.all(subs.map((s) => s.dispose()))) };
  },

  async doctor(ctx) {
    try {
      const m = await managerInfo(ctx.settings);
      return [
        {
          name: 'systemd: manager',
          ok: true,
          detail: `systemd ${m.version} on ${busAddress(ctx.settings)} (system state ${m.state}); unit files in ${unitHostDir(ctx.settings)}`,
        },
      ];
    } catch (err) {
      const e = toOpdError(err);
      return [{ name: 'systemd: manager', ok: false, detail: e.message, hint: e.hint }];
    }
  },
};

const SHOWABLE = /\.(service|socket|timer|target|path|mount|automount|swap|slice)$/;
function isShowable(n: string): boolean {
  return (
    SHOWABLE.test(n) &&
    n.length <= 255 &&
    /^([A-Za-z0-9:_.-]|\\x[0-9a-f]{2})+(@([A-Za-z0-9:_.-]|\\x[0-9a-f]{2})*)?\.[a-z]+$/.test(n) &&
    !n.includes('..') &&
    !n.startsWith('.')
  );
}

/** Absolute paths a unit's files mention (ExecStart=/usr/bin/x, EnvironmentFile=-/etc/x, …). */
export function referencedPaths(spec: UnitState): string[] {
  const texts = [
    typeof spec.unit_file === 'string' ? spec.unit_file : '',
    ...Object.values(spec.dropins ?? {}).filter((v): v is string => typeof v === 'string'),
  ];
  const out = new Set<string>();
  for (const t of texts)
    for (const line of t.split('\n')) {
      const m = /^\s*[A-Za-z]+\s*=\s*(.*)$/.exec(line);
      if (!m) continue;
      for (const tok of m[1].split(/\s+/)) {
        const p = /^[-@!+:|]*(\/[^\s;"']+)/.exec(tok)?.[1];
        if (p && !p.includes('/../')) out.add(p.replace(/\/+$/, '') || '/');
      }
    }
  return [...out].sort();
}

/** The edges of the systemd section; `document` is the whole `plugins` map when the core passes it. */
export function unitEdges(desired: SystemdSection, document?: Record<string, unknown>): Edge[] {
  const edges: Edge[] = [];
  const units = desired.units ?? {};
  const files = isObj(document?.files) && isObj(document.files.paths) ? document.files.paths : {};
  const pkgs = isObj(document?.packages) && isObj(document.packages.installed) ? document.packages.installed : {};
  for (const [n, spec] of Object.entries(units).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const from = `systemd/units/${n}`;
    const t = templateOf(n);
    if (t && t in units) edges.push({ from, to: `systemd/units/${t}`, kind: 'template' });
    for (const p of referencedPaths(spec))
      if (p in files) edges.push({ from, to: `files/paths/${p}`, kind: 'references-file' });
    const pkg = n.replace(/@.*$|\.[a-z]+$/, '');
    if (pkg in pkgs) edges.push({ from, to: `packages/installed/${pkg}`, kind: 'shipped-by' });
  }
  return edges;
}

export default plugin;
