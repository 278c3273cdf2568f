import { Command, Option } from 'commander';
import { hostname } from 'node:os';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { act, addAuditOptions, auditPaths, outputOption, stdio } from './common.js';
import { addEtcdOptions } from './etcd-options.js';
import { verifyLog } from '../audit/verify.js';
import { readKey } from '../audit/chain.js';
import { OpdError } from '../core/errors.js';
import { FORMAT_VERSION } from '../core/plan.js';

export function auditCommand(): Command {
  const audit = new Command('audit').description('the hash-chained audit trail');
  audit.addCommand(
    addEtcdOptions(
      addAuditOptions(
        new Command('verify').description(
          'walk the chain; exit 0 only for an intact chain, else name the first broken entry',
        ),
      ),
      'with --witness',
    )
      .addOption(outputOption(['text', 'json'], 'text'))
      .addOption(
        new Option(
          '--witness',
          "also compare the chain with the audit head etcd's witness holds (fleet mode, copied by `opd fleet witness`): catches truncated, reset, rewritten or removed trails without the HMAC key",
        ),
      )
      .addOption(
        new Option(
          '--host <name>',
          'with --witness: the host name in the fleet (env OPD_FLEET_HOST; default the hostname)',
        ),
      )
      .action(
        act(async (_o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const { log, key } = auditPaths(o);
          const r = verifyLog(log, readKey(key));
          let witness: import('../fleet/witness.js').WitnessResult | undefined;
          if (o.witness) {
            const { parseEndpoints, checkName } = await import('../fleet/keys.js');
            const { accessFrom, connect, etcdError } = await import('../fleet/store.js');
            const { witnessCheck } = await import('../fleet/witness.js');
            const host = checkName('host', (o.host as string | undefined) ?? process.env.OPD_FLEET_HOST ?? hostname());
            const c = connect(accessFrom(parseEndpoints(o.etcd as string | undefined), o));
            try {
              witness = await witnessCheck(c, host, log);
            } catch (err) {
              throw etcdError(err, 'reading the witnessed audit heads');
            } finally {
              c.close();
            }
          }
          if (o.output === 'json') stdio.out(JSON.stringify({ log, ...r, ...(witness ? { witness } : {}) }, null, 2));
          else if (witness) {
            const n = witness.witnessed.length;
            if (witness.ok)
              stdio.out(
                `ok: ${log}: agrees with the ${n} audit head${n === 1 ? '' : 's'} etcd's witness holds for ${witness.host} (newest seq ${witness.witnessed[n - 1].seq})`,
              );
            for (const p of witness.problems) stdio.err(`opd: witness: ${p}`);
            for (const w of witness.warnings) stdio.err(`opd: warning: witness: ${w}`);
          }
          if (witness && !witness.ok)
            throw new OpdError(
              'audit-broken',
              `${log}: the local trail disagrees with etcd's witness: ${witness.problems[0]}`,
              {
                hint: "keep the file for inspection; etcd's witness (/opd/witness/HOST/, written by the operator's `opd fleet witness`) holds every head the host published while the copier ran",
              },
            );
          if (o.output !== 'json') {
            for (const w of r.warnings) stdio.err(`opd: warning: ${w}`);
            if (r.ok)
              stdio.out(
                `ok: ${log}: ${r.entries} entries in ${r.runs} runs, chain intact${r.sealed ? ', head seal verified' : ' (head not sealed: give --audit-key to detect whole-chain rewrites)'}`,
              );
          }
          if (!r.ok)
            throw new OpdError(
              'audit-broken',
              `${log}: chain broken at ${r.broken!.seq !== undefined ? `seq ${r.broken!.seq}` : ''} (line ${r.broken!.line}): ${r.broken!.reason}`,
              {
                hint: 'keep the file for inspection; entries before this one are intact',
              },
            );
          return 0;
        }),
      ),
  );
  audit.addCommand(
    addAuditOptions(new Command('log').description('print audit entries'))
      .addOption(outputOption(['text', 'json', 'jsonl'], 'text'))
      .option('--run <id>', 'only this run')
      .option('--tail <n>', 'only the last n entries')
      .action(
        act(async (_o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const { log } = auditPaths(o);
          const lines: string[] = [];
          const tail = o.tail !== undefined ? Number(o.tail) : undefined;
          if (tail !== undefined && (!Number.isInteger(tail) || tail < 0))
            throw new OpdError('usage', '--tail needs a whole number');
          try {
            const rl = createInterface({ input: createReadStream(log), crlfDelay: Infinity });
            for await (const l of rl) {
              if (!l.trim()) continue;
              if (o.run && !l.includes(`"run":${JSON.stringify(o.run)}`)) continue;
              lines.push(l);
              if (tail !== undefined && lines.length > tail) lines.shift();
            }
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT')
              throw new OpdError('usage', `${log}: no audit trail yet`, {
                hint: 'run opd apply first, or give --audit-log',
              });
            throw err;
          }
          if (o.output === 'json') {
            const entries: unknown[] = [];
            for (const l of lines) {
              try {
                entries.push(JSON.parse(l));
              } catch {
                entries.push({ unparsable: l.slice(0, 200) });
              }
            }
            stdio.out(JSON.stringify({ format_version: FORMAT_VERSION, log, entries }, null, 2));
            return 0;
          }
          for (const l of lines) {
            if (o.output === 'jsonl') {
              stdio.out(l);
              continue;
            }
            let e: Record<string, unknown>;
            try {
              e = JSON.parse(l);
            } catch {
              stdio.out(`(unparsable line) ${l.slice(0, 80)}`);
              continue;
            }
            const what =
              e.type === 'change' || e.type === 'rollback'
                ? `${e.result} ${e.action} ${e.address}${e.summary ? `: ${e.summary}` : ''}${e.error ? ` — ${e.error}` : ''}`
                : e.type === 'run.start'
                  ? `${e.changes} changes planned from ${e.file} (trigger ${e.trigger}, user ${e.user})`
                  : e.type === 'run.end'
                    ? `${e.status}${e.interrupted ? ` by ${e.interrupted} (${e.not_started} not started)` : ''} ${JSON.stringify(e.summary)} in ${e.duration_ms} ms`
                    : e.type === 'intent'
                      ? intentText(e)
                      : e.type === 'recovered'
                        ? recoveredText(e)
                        : e.type === 'run.interrupted'
                          ? `${e.reason}${e.recovered ? `; recovered ${JSON.stringify(e.recovered)}` : ''}`
                          : e.type === 'drift'
                            ? `${e.address}: changed outside opd${byText(e.attribution)}`
                            : JSON.stringify(
                                Object.fromEntries(
                                  Object.entries(e).filter(
                                    ([k]) => !['seq', 'ts', 'run', 'type', 'prev', 'hash'].includes(k),
                                  ),
                                ),
                              );
            stdio.out(`${String(e.seq).padStart(6)} ${e.ts} ${e.run} ${String(e.type).padEnd(15)} ${what}`);
          }
          return 0;
        }),
      ),
  );
  return audit;
}

/** `intent`: the changes a wave was about to start (write-ahead). */
function intentText(e: Record<string, unknown>): string {
  const chs = Array.isArray(e.changes) ? (e.changes as { address: string; action: string }[]) : [];
  const first = chs
    .slice(0, 3)
    .map((c) => `${c.action} ${c.address}`)
    .join(', ');
  return `${e.kind === 'rollback' ? 'rollback of ' : ''}${chs.length} change${chs.length === 1 ? '' : 's'} about to start: ${first}${chs.length > 3 ? ', …' : ''}`;
}

/** `recovered`: what the host held for a change a dead run had in flight, or a leftover removed. */
function recoveredText(e: Record<string, unknown>): string {
  if (e.leftover) return `removed ${String(e.found)} ${String(e.leftover)} (left by a killed run)`;
  if (Array.isArray(e.leftovers)) return `removed ${String(e.found)}: ${(e.leftovers as string[]).join(', ')}`;
  const why =
    e.found === 'partial' ? ` (differs: ${(e.differing as string[]).join(', ')})` : e.why ? ` (${String(e.why)})` : '';
  return `${String(e.found)} ${e.kind === 'rollback' ? 'rollback ' : ''}${String(e.action)} ${String(e.address)}${why}`;
}

/** ", by ovs-vsctl del-port br0 p0 (invoked by bash; ovsdb transaction comment)", or who is unknown and why. */
export function byText(a: unknown): string {
  if (!a || typeof a !== 'object') return '';
  const { source, actor, reason } = a as { source?: string; actor?: Record<string, unknown>; reason?: string };
  if (!actor) return `; who: unknown (${reason ?? source ?? 'no record'})`;
  const who = [
    actor.command,
    actor.parent !== undefined ? `invoked by ${String(actor.parent)}` : undefined,
    actor.pid !== undefined ? `pid ${String(actor.pid)}` : undefined,
    actor.user !== undefined
      ? `user ${String(actor.user)}`
      : actor.uid !== undefined
        ? `uid ${String(actor.uid)}`
        : undefined,
    actor.unit !== undefined ? `unit ${String(actor.unit)}` : undefined,
  ].filter((x) => x !== undefined);
  return `, by ${String(who.shift() ?? 'an unnamed actor')}${who.length ? ` (${who.join(', ')})` : ''} [${source}]`;
}
