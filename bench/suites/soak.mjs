// Soak: 10,000 reconcile runs of the engine (the daemon's unit of work: lock, audit open, read,
// diff, plan) on a small no-op document; RSS sampled every 1,000 runs after a forced GC.
// Memory must not grow with the number of runs.
import { join } from 'node:path';
import { engine, ms, now, tmp } from './lib.mjs';

export async function run({ progress = () => {} } = {}) {
  const e = await engine();
  const root = tmp('opd-soak-root-');
  const paths = { '/etc/opd-soak': { type: 'directory', mode: '0755' } };
  for (let i = 0; i < 20; i++) paths[`/etc/opd-soak/f${i}.conf`] = { content: `k = ${i}\n`, mode: '0644' };
  const prep = await e.prepareLoaded(
    e.parseText(Buffer.from(JSON.stringify({ version: 1, plugins: { files: { paths } } })), 'soak.json'),
  );
  const settings = { root };
  const auditLog = join(tmp(), 'audit.jsonl');
  const first = await e.run(prep, { settings, log: e.log, auditLog });
  if (first.status !== 'ok') throw new Error(`setup: ${first.status}`);
  const total = Number(process.env.OPD_BENCH_SOAK_RUNS ?? 10000);
  const rows = [];
  const gc = globalThis.gc ?? (() => undefined);
  const t0 = now();
  for (let i = 1; i <= total; i++) {
    const r = await e.run(prep, { settings, log: e.log, auditLog });
    if (r.status !== 'noop') throw new Error(`run ${i}: ${r.status}`);
    if (i === 100 || i % 1000 === 0) {
      gc();
      const m = process.memoryUsage();
      rows.push({
        runs: i,
        rss_mb: Math.round(m.rss / 2 ** 20),
        heap_used_mb: Math.round((m.heapUsed / 2 ** 20) * 10) / 10,
        ms_per_run: ms((now() - t0) / i),
      });
      progress(`${i} runs`);
    }
  }
  const growth = rows[rows.length - 1].heap_used_mb - rows[0].heap_used_mb;
  return {
    rows,
    notes: `heap growth from run 100 to run ${total}: ${Math.round(growth * 10) / 10} MB (no-op runs of a 21-file document; --expose-gc ${globalThis.gc ? 'on' : 'off'})`,
  };
}
