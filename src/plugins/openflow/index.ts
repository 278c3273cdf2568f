/**
 * openflow: OpenFlow flows on Open vSwitch bridges through `ovs-ofctl -O OpenFlow13` (op-dbus's
 * OpenFlowConfig). Every flow opd installs carries a cookie with opd's prefix in its upper 32
 * bits and a hash of the flow's name in the lower 32: opd reads, changes and removes only such
 * flows; flows with any other cookie are never touched. Reads are one `dump-flows` per named
 * bridge; an apply is one `add-flows` per bridge (delete and add lines on its stdin).
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import { dirname } from 'node:path';
import type { Change, ChangeResult, Obj, Plugin, ReadContext, Settings } from '../../core/plugin.js';
import { ApplyContext, assertApplyContext } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { arrayToMap } from '../../core/normalize.js';
import { mapEntries } from '../../core/shorthand.js';
import { isObj } from '../../core/diff.js';
import { runMutate, runRead, ExecFailure } from '../../exec.js';
import {
  cookieOf,
  DEFAULT_PRIORITY,
  isOpdCookie,
  matchText,
  normalizeActions,
  normalizeMatch,
  parseDumpLine,
  type Flow,
} from './flows.js';
import { normalizeOpdbus } from './opdbus.js';
import { planBridge, type FlowChangeData } from './plan.js';
import type { Bridge, Flow as FlowSpec, OpenflowDoc } from './section.gen.js';
import { settingOf } from '../../core/manifest.js';
import { OVS_DB } from '../../host/settings.js';

/** The section's types, generated from schema/openflow.schema.json (npm run gen:types). */
export type OpenflowSection = OpenflowDoc &
  Obj & {
    /** read only: flow address → the foreign flow (other cookie) it would replace */
    foreign_collisions?: Record<string, string>;
  };

/**
 * ovs-ofctl finds a bridge's management socket (<bridge>.mgmt) in OVS_RUNDIR: the directory of
 * the database socket opd is pointed at (--ovs-db unix:DIR/db.sock), as for ovs-vswitchd.
 */
export function ofctlEnv(settings: Settings): Record<string, string> {
  const db = settingOf(settings, OVS_DB)!;
  return db.startsWith('unix:') ? { OVS_RUNDIR: dirname(db.slice(5)) } : {};
}

/** ovs-ofctl through the read door (dump-flows, --version), or the mutate door inside an apply (add-flows). */
async function ofctl(via: Settings | ApplyContext, args: string[], input?: string) {
  const apply = via instanceof ApplyContext ? via : undefined;
  const settings = via instanceof ApplyContext ? via.settings : via;
  const argv = ['-O', 'OpenFlow13', ...args];
  const opts = {
    env: ofctlEnv(settings),
    input,
    backend: 'openflow (ovs-ofctl)',
    installHint: 'apt-get install openvswitch-switch',
  };
  return apply ? runMutate(apply, 'ovs-ofctl', argv, opts) : runRead('ovs-ofctl', argv, opts);
}

const NOT_A_BRIDGE = /is not a bridge or a socket|No such file or directory|Connection refused/;

interface Dump {
  exists: boolean;
  /** opd's flows by cookie */
  mine: Map<string, Flow>;
  /** keys (table, priority, match) of flows opd did not create → their cookie */
  foreign: Map<string, string>;
}

const flowKey = (f: Flow) => `${f.table}/${f.priority}/${matchText(f.match)}`;

/** One dump of all flows of a bridge (opd's and others', told apart by cookie). */
async function dumpBridge(settings: Settings, bridge: string): Promise<Dump> {
  let out: string;
  try {
    out = (await ofctl(settings, ['--names', '--no-stats', 'dump-flows', bridge])).stdout;
  } catch (e) {
    if (e instanceof ExecFailure && NOT_A_BRIDGE.test(e.stderr))
      return { exists: false, mine: new Map(), foreign: new Map() };
    throw e;
  }
  const mine = new Map<string, Flow>();
  const foreign = new Map<string, string>();
  for (const line of out.split('\n')) {
    const p = parseDumpLine(line);
    if (!p) continue;
    if (isOpdCookie(p.cookie)) mine.set(BigInt(p.cookie).toString(16), p.flow);
    else foreign.set(flowKey(p.flow), p.cookie);
  }
  return { exists: true, mine, foreign };
}

const cookieHex = (name: string) => BigInt(cookieOf(name)).toString(16);

/** The desired flow with every field ovs-ofctl prints filled in (the normalized document form). */
export function fullFlow(spec: { [K in keyof FlowSpec]?: unknown }): Flow {
  return {
    table: typeof spec.table === 'number' ? spec.table : 0,
    priority: typeof spec.priority === 'number' ? spec.priority : DEFAULT_PRIORITY,
    match: isObj(spec.match) ? normalizeMatch(spec.match) : {},
    actions: Array.isArray(spec.actions)
      ? normalizeActions(spec.actions.map(String))
      : typeof spec.actions === 'string'
        ? normalizeActions([spec.actions])
        : [],
    idle_timeout: typeof spec.idle_timeout === 'number' ? spec.idle_timeout : 0,
    hard_timeout: typeof spec.hard_timeout === 'number' ? spec.hard_timeout : 0,
  };
}

const scalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);

/** A flow whose parts have the shapes the schema wants; others stay as written so validation points at them. */
function normalizable(f: Obj): boolean {
  const actionsOk =
    f.actions === undefined ||
    typeof f.actions === 'string' ||
    (Array.isArray(f.actions) && f.actions.every((a) => typeof a === 'string'));
  const matchOk = f.match === undefined || (isObj(f.match) && Object.values(f.match).every(scalar));
  const numsOk = ['table', 'priority', 'idle_timeout', 'hard_timeout'].every(
    (k) => f[k] === undefined || Number.isInteger(f[k]),
  );
  return actionsOk && matchOk && numsOk;
}

async function readSection(ctx: ReadContext, desired: OpenflowSection): Promise<OpenflowSection> {
  const bridges: Record<string, Bridge> = {};
  const faults: Record<string, string> = {};
  const names = Object.keys(desired.bridges ?? {}).sort();
  const dumps = await Promise.all(names.map((b) => dumpBridge(ctx.settings, b)));
  names.forEach((b, i) => {
    const dump = dumps[i];
    if (!dump.exists) return;
    const want = desired.bridges![b];
    const wantFlows = want.flows ?? {};
    const byCookie = new Map<string, string>();
    for (const n of Object.keys(wantFlows)) {
      const c = cookieHex(n);
      if (byCookie.has(c))
        throw new OpdError(
          'invalid-document',
          `openflow/bridges/${b}: flows ${byCookie.get(c)} and ${n} get the same cookie 0x${c}`,
          { hint: 'rename one of them' },
        );
      byCookie.set(c, n);
    }
    const flows: Record<string, FlowSpec> = {};
    for (const [c, f] of dump.mine) flows[byCookie.get(c) ?? `cookie-0x${c}`] = f;
    if (want.state === 'absent' && !dump.mine.size) return;
    for (const [n, spec] of Object.entries(wantFlows)) {
      if (spec.state === 'absent' || n in flows) continue;
      const hit = dump.foreign.get(flowKey(fullFlow(spec)));
      if (hit)
        faults[`openflow/bridges/${b}/flows/${n}`] =
          `a flow opd did not create (cookie ${hit}) has the same table, priority and match`;
    }
    bridges[b] = { flows };
  });
  // not a collection: the core's diff ignores it; faults() turns it into refusals
  return Object.keys(faults).length ? { bridges, foreign_collisions: faults } : { bridges };
}

async function applyBridge(
  ctx: ApplyContext,
  bridge: string,
  changes: Change<FlowChangeData>[],
): Promise<ChangeResult[]> {
  assertApplyContext(ctx);
  const lines = (list: Change<FlowChangeData>[]) => list.flatMap((c) => c.data!.lines).join('\n') + '\n';
  try {
    await ofctl(ctx, ['--names', 'add-flows', bridge, '-'], lines(changes));
    return changes.map((c) => ({ address: c.address, status: 'ok' as const }));
  } catch (err) {
    if (changes.length === 1)
      return [{ address: changes[0].address, status: 'failed', error: explain(err, changes[0].address) }];
    // find the culprit: one change at a time (ovs-ofctl stops at the first bad line)
    const out: ChangeResult[] = [];
    for (const c of changes) {
      try {
        await ofctl(ctx, ['--names', 'add-flows', bridge, '-'], lines([c]));
        out.push({ address: c.address, status: 'ok' });
      } catch (e) {
        out.push({ address: c.address, status: 'failed', error: explain(e, c.address) });
      }
    }
    return out;
  }
}

function explain(err: unknown, address: string): OpdError {
  if (err instanceof ExecFailure && NOT_A_BRIDGE.test(err.stderr))
    return new OpdError(
      'backend-failed',
      `${address}: the bridge is not there or ovs-vswitchd is not running (${err.stderr.trim().split('\n').pop()})`,
      {
        address,
        hint: 'create the bridge (ovs plugin) and start ovs-vswitchd; opd finds <bridge>.mgmt in the directory of --ovs-db',
      },
    );
  const e = toOpdError(err);
  return e.address ? e : new OpdError(e.kind, e.message, { address, hint: e.hint, cause: err });
}

const plugin: Plugin<OpenflowSection, FlowChangeData> = {
  ...sectionSpec(manifest),

  normalize(section, ctx) {
    if (!isObj(section)) return section;
    const out: Obj = normalizeOpdbus(section, ctx);
    out.bridges = arrayToMap(out.bridges, 'name', '/plugins/openflow/bridges', ctx);
    if (!isObj(out.bridges)) return out;
    out.bridges = mapEntries(out.bridges, (spec) =>
      isObj(spec.flows)
        ? {
            ...spec,
            // complete and in ovs-ofctl's printed form, so that what the switch prints compares equal
            flows: mapEntries(spec.flows, (f) =>
              f.state !== 'absent' && normalizable(f) ? { ...f, ...fullFlow(f) } : f,
            ),
          }
        : spec,
    );
    return out;
  },

  read: readSection,

  faults(current) {
    // foreign flows that a desired flow would replace (same table, priority and match)
    return current.foreign_collisions ?? {};
  },

  plan: planBridge,

  async apply(ctx, changes) {
    const byBridge = new Map<string, Change<FlowChangeData>[]>();
    for (const c of changes) {
      const b = c.data!.bridge;
      byBridge.set(b, [...(byBridge.get(b) ?? []), c]);
    }
    const out: ChangeResult[] = [];
    for (const [b, list] of byBridge) out.push(...(await applyBridge(ctx, b, list)));
    return out;
  },

  edges(desired, all) {
    // flows need their bridge (and the ports they name): after everything under ovs/bridges/<b>
    const ovs = isObj(all.ovs) && isObj(all.ovs.bridges) ? all.ovs.bridges : {};
    return Object.keys(desired.bridges ?? {})
      .filter((b) => b in ovs)
      .map((b) => ({ from: `openflow/bridges/${b}`, to: `ovs/bridges/${b}`, kind: 'flows-need-bridge' }));
  },

  async show(ctx) {
    // every bridge with flows of opd's (named by their cookie: `opd apply` of the output changes nothing)
    const out = await runRead('ovs-vsctl', [`--db=${settingOf(ctx.settings, OVS_DB)!}`, 'list-br'], {
      backend: 'openflow (ovs-vsctl)',
    });
    const desired: OpenflowSection = {
      bridges: Object.fromEntries(
        out.stdout
          .split('\n')
          .filter(Boolean)
          .map((b) => [b, { flows: {} }]),
      ),
    };
    const cur = await readSection(ctx, desired);
    // flows opd did not create are not shown; a flow's name is unknown here, so it is named by its cookie
    const bridges = Object.fromEntries(
      Object.entries(cur.bridges ?? {}).filter(([, b]) => Object.keys(b.flows ?? {}).length),
    );
    return { bridges };
  },

  async doctor(ctx) {
    try {
      await ofctl(ctx.settings, ['--version']);
      return [
        {
          name: 'openflow: ovs-ofctl',
          ok: true,
          detail: `ovs-ofctl found; management sockets in ${ofctlEnv(ctx.settings).OVS_RUNDIR ?? 'the default OVS run directory'}`,
        },
      ];
    } catch (err) {
      const e = toOpdError(err);
      return [{ name: 'openflow: ovs-ofctl', ok: false, detail: e.message, hint: e.hint }];
    }
  },
};

export default plugin;
