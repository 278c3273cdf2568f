import { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { act, addAuditOptions, auditPaths, outputOption, stdio } from './common.js';
import { verifyLog } from '../audit/verify.js';
import { readKey } from '../audit/chain.js';
import { OpdError } from '../core/errors.js';

export function auditCommand(): Command {
  const audit = new Command('audit').description('the hash-chained audit trail');
  audit.addCommand(
    addAuditOptions(new Command('verify').description('walk the chain; exit 0 only for an intact chain, else name the first broken entry'))
      .addOption(outputOption(['text', 'json'], 'text'))
      .action(act(async (_o: Record<string, unknown>, cmd: Command) => {
        const o = cmd.optsWithGlobals();
        const { log, key } = auditPaths(o);
        const r = verifyLog(log, readKey(key));
        if (o.output === 'json') stdio.out(JSON.stringify({ log, ...r }, null, 2));
        else {
          for (const w of r.warnings) stdio.err(`opd: warning: ${w}`);
          if (r.ok) stdio.out(`ok: ${log}: ${r.entries} entries in ${r.runs} runs, chain intact${r.sealed ? ', head seal verified' : ' (head not sealed: give --audit-key to detect whole-chain rewrites)'}`);
        }
        if (!r.ok) throw new OpdError('audit-broken', `${log}: chain broken at ${r.broken!.seq !== undefined ? `seq ${r.broken!.seq}` : ''} (line ${r.broken!.line}): ${r.broken!.reason}`, {
          hint: 'keep the file for inspection; entries before this one are intact',
        });
        return 0;
      })),
  );
  audit.addCommand(
    addAuditOptions(new Command('log').description('print audit entries'))
      .addOption(outputOption(['text', 'json'], 'text'))
      .option('--run <id>', 'only this run')
      .option('--tail <n>', 'only the last n entries')
      .action(act(async (_o: Record<string, unknown>, cmd: Command) => {
        const o = cmd.optsWithGlobals();
        const { log } = auditPaths(o);
        const lines: string[] = [];
        const tail = o.tail !== undefined ? Number(o.tail) : undefined;
        if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new OpdError('usage', '--tail needs a whole number');
        try {
          const rl = createInterface({ input: createReadStream(log), crlfDelay: Infinity });
          for await (const l of rl) {
            if (!l.trim()) continue;
            if (o.run && !l.includes(`"run":${JSON.stringify(o.run)}`)) continue;
            lines.push(l);
            if (tail !== undefined && lines.length > tail) lines.shift();
          }
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new OpdError('usage', `${log}: no audit trail yet`, { hint: 'run opd apply first, or give --audit-log' });
          throw err;
        }
        for (const l of lines) {
          if (o.output === 'json') {
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
                  ? `${e.status} ${JSON.stringify(e.summary)} in ${e.duration_ms} ms`
                  : e.type === 'drift'
                    ? `${e.address}: changed outside opd`
                    : JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => !['seq', 'ts', 'run', 'type', 'prev', 'hash'].includes(k))));
          stdio.out(`${String(e.seq).padStart(6)} ${e.ts} ${e.run} ${String(e.type).padEnd(15)} ${what}`);
        }
        return 0;
      })),
  );
  return audit;
}
