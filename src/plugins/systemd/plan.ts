/**
 * Pure planning for systemd units: a resource diff becomes file writes, unit-file operations
 * (enable/disable/mask/unmask) and at most one job per unit, each with its reason.
 */
import type { Operation } from 'fast-json-patch';
import type { Change, Obj, ResourceDiff } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import { isRunning, isTemplate, rel } from './names.js';

export type JobVerb =
  | 'start'
  | 'stop'
  | 'restart'
  | 'try-restart'
  | 'reload-or-restart'
  | 'reload-or-try-restart'
  | 'reset-failed'
  | 'restart-instances';

export type SystemdOp =
  | { kind: 'write'; unit: string; rel: string; content: string }
  | { kind: 'remove'; unit: string; rel: string }
  | { kind: 'enable' | 'disable' | 'mask' | 'unmask'; unit: string }
  | { kind: 'job'; unit: string; job: JobVerb; reload?: boolean; early?: boolean };

export interface SystemdChangeData {
  op: SystemdOp;
}

function lines(s: string): number {
  return s === '' ? 0 : s.split('\n').length - (s.endsWith('\n') ? 1 : 0);
}

function lineDelta(from: string, to: string): string {
  const a = from.split('\n');
  const b = to.split('\n');
  const setA = new Map<string, number>();
  for (const l of a) setA.set(l, (setA.get(l) ?? 0) + 1);
  let kept = 0;
  for (const l of b) {
    const n = setA.get(l) ?? 0;
    if (n > 0) {
      kept++;
      setA.set(l, n - 1);
    }
  }
  return `+${b.length - kept} −${a.length - kept} lines`;
}

function opsUnder(ops: Operation[], path: string): Operation[] {
  return ops.filter((o) => o.path === path || o.path.startsWith(path + '/'));
}

export function planUnit(diff: ResourceDiff): Change<SystemdChangeData>[] {
  const unit = diff.name;
  const A = diff.address;
  const base = { resource: A, plugin: 'systemd' };
  const changes: Change<SystemdChangeData>[] = [];
  const mk = (
    address: string,
    action: string,
    summary: string,
    op: SystemdOp,
    extra: Partial<Change<SystemdChangeData>> = {},
  ): Change<SystemdChangeData> => {
    const c: Change<SystemdChangeData> = {
      ...base,
      address,
      action,
      summary,
      data: { op } satisfies SystemdChangeData,
      ...extra,
    };
    changes.push(c);
    return c;
  };

  if (diff.action === 'delete') {
    // state: absent — stop, disable, remove the files opd wrote (read reports only those)
    const cur = diff.current ?? {};
    const first: string[] = [];
    if (isRunning(cur.active_state)) {
      mk(A, 'stop', '', { kind: 'job', unit, job: 'stop', early: true }, { reason: 'state: absent', ops: diff.ops });
      first.push(A);
    }
    if (cur.enabled === true) {
      mk(
        `${A}/enabled`,
        'disable',
        '',
        { kind: 'disable', unit },
        { reason: 'state: absent', after: [...first], ops: diff.ops },
      );
      first.push(`${A}/enabled`);
    }
    if (typeof cur.unit_file === 'string')
      mk(
        `${A}/unit_file`,
        'delete',
        'unit file',
        { kind: 'remove', unit, rel: rel.unitFile(unit) },
        { after: [...first], ops: diff.ops },
      );
    for (const n of Object.keys(isObj(cur.dropins) ? cur.dropins : {}).sort())
      mk(
        `${A}/dropins/${n}`,
        'delete',
        'drop-in',
        { kind: 'remove', unit, rel: rel.dropin(unit, n) },
        { after: [...first], ops: diff.ops },
      );
    if (cur.active_state === 'failed')
      mk(
        A,
        'reset-failed',
        'failed → inactive',
        { kind: 'job', unit, job: 'reset-failed' },
        { reason: 'state: absent', after: changes.map((c) => c.address), ops: diff.ops },
      );
    return changes;
  }

  const want = diff.desired ?? {};
  const cur: Obj = diff.current ?? {};
  const creating = diff.action === 'create';
  const fileAddrs: string[] = [];
  const changed: string[] = [];

  // unmask before files are written (a mask is a symlink where the unit file goes)
  const preFiles: string[] = [];
  if (want.masked === false && cur.masked === true) {
    mk(`${A}/masked`, 'unmask', '', { kind: 'unmask', unit }, { ops: opsUnder(diff.ops, '/masked') });
    preFiles.push(`${A}/masked`);
  }

  if (typeof want.unit_file === 'string' && want.unit_file !== cur.unit_file) {
    const had = typeof cur.unit_file === 'string';
    const summary = had
      ? `unit file (${lineDelta(cur.unit_file as string, want.unit_file)})`
      : `unit file (${lines(want.unit_file)} lines)`;
    mk(
      `${A}/unit_file`,
      had ? 'update' : 'create',
      summary,
      { kind: 'write', unit, rel: rel.unitFile(unit), content: want.unit_file },
      { after: [...preFiles], ops: opsUnder(diff.ops, '/unit_file') },
    );
    fileAddrs.push(`${A}/unit_file`);
    changed.push('unit file');
  }
  const wantD = isObj(want.dropins) ? want.dropins : undefined;
  const curD = isObj(cur.dropins) ? cur.dropins : {};
  if (wantD) {
    for (const n of Object.keys(wantD).sort()) {
      const content = wantD[n];
      if (typeof content !== 'string' || content === curD[n]) continue;
      const had = typeof curD[n] === 'string';
      const summary = had ? `drop-in (${lineDelta(curD[n] as string, content)})` : `drop-in (${lines(content)} lines)`;
      mk(
        `${A}/dropins/${n}`,
        had ? 'update' : 'create',
        summary,
        { kind: 'write', unit, rel: rel.dropin(unit, n), content },
        { after: [...preFiles], ops: opsUnder(diff.ops, `/dropins/${n}`) },
      );
      fileAddrs.push(`${A}/dropins/${n}`);
      changed.push(`drop-in ${n}`);
    }
  }
  // drop-ins marked absent (or pruned) are in current but not in desired
  for (const n of Object.keys(curD).sort()) {
    if (wantD && n in wantD) continue;
    if (!diff.ops.some((o) => o.op === 'remove' && (o.path === `/dropins/${n}` || (o.path === '/dropins' && !wantD))))
      continue;
    mk(
      `${A}/dropins/${n}`,
      'delete',
      'drop-in',
      { kind: 'remove', unit, rel: rel.dropin(unit, n) },
      { after: [...preFiles], ops: opsUnder(diff.ops, `/dropins/${n}`) },
    );
    fileAddrs.push(`${A}/dropins/${n}`);
    changed.push(`drop-in ${n}`);
  }

  const unitOps: string[] = [];
  if (want.enabled !== undefined && want.enabled !== cur.enabled && !(creating && want.enabled === false)) {
    mk(
      `${A}/enabled`,
      want.enabled ? 'enable' : 'disable',
      '',
      { kind: want.enabled ? 'enable' : 'disable', unit },
      { after: [...preFiles, ...fileAddrs], ops: opsUnder(diff.ops, '/enabled') },
    );
    unitOps.push(`${A}/enabled`);
  }
  let maskAddr: string | undefined;
  if (want.masked === true && cur.masked !== true) {
    maskAddr = `${A}/masked`;
    unitOps.push(maskAddr);
  }

  // at most one job per unit
  const why = changed.length
    ? `${changed.length > 2 ? `${changed.length} files` : changed.join(' and ')} changed`
    : undefined;
  const jobAfter = [...preFiles, ...fileAddrs, ...unitOps.filter((a) => a !== maskAddr)];
  const reloadInstead = want.reload_on_change === true;
  const job = (verb: JobVerb, summary: string, reason?: string, early = false) =>
    mk(
      A,
      verb,
      summary,
      { kind: 'job', unit, job: verb, ...(reloadInstead ? { reload: true } : {}), ...(early ? { early } : {}) },
      { ...(reason ? { reason } : {}), after: early ? [] : jobAfter, ops: opsUnder(diff.ops, '/active_state') },
    );
  const curState = creating ? 'inactive' : cur.active_state;
  if (isTemplate(unit)) {
    if (why && !creating)
      job('restart-instances', reloadInstead ? 'reload running instances' : 'restart running instances', why);
  } else if (want.active_state === 'active') {
    if (curState === 'active' || curState === 'reloading') {
      if (why) job(reloadInstead ? 'reload-or-restart' : 'restart', '', why);
    } else job('start', `${String(curState)} → active`, why && !creating ? why : undefined);
  } else if (want.active_state === 'inactive') {
    if (isRunning(curState))
      job('stop', `${String(curState)} → inactive`, want.masked === true ? 'masked' : undefined, want.masked === true);
    else if (curState === 'failed') job('reset-failed', 'failed → inactive');
  } else if (why && !creating) {
    job(
      reloadInstead ? 'reload-or-try-restart' : 'try-restart',
      reloadInstead ? 'reload if running' : 'restart if running',
      why,
    );
  }
  if (maskAddr)
    mk(
      maskAddr,
      'mask',
      '',
      { kind: 'mask', unit },
      {
        after: changes.some((c) => c.address === A && c.data!.op.kind === 'job') ? [A] : [],
        ops: opsUnder(diff.ops, '/masked'),
      },
    );
  return changes;
}
