// Big documents (issue 22, linear-time parsing with limits), as whole processes paired with a
// floor (lib.mjs `paired`: A B A B …, medians, load before and after):
//   - opd validate of 40,000 keys in one map against the yaml package reading it (target < 2x);
//   - opd validate of 30 MB documents, refused (more than 1,000,000 nodes) or validated, each
//     within 10 s: 885,000 keys in one map (the duplicate-key case), file contents (few nodes,
//     long block scalars), 15,000,000 numbers in one flow sequence (the most nodes per byte);
// and, in process, how long the daemon's event loop stands still while it reads a new document:
// the parse on the main thread (before) against the parse in a worker thread (after).
//   npm run bench -- parse
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROOT, load1, ms, opdCommand, paired, tmp } from './lib.mjs';

const node = (...args) => [process.execPath, args];
const floor = (...args) => node(join(ROOT, 'bench/floors/read-document.mjs'), ...args);
// refused with exit 65 is as good an answer as ok for a document over the limits
const refusedOrOk = (r) => r.status === 0 || (r.status === 65 && /more than the \d+ allowed/.test(r.stderr));

function keysDoc(n) {
  const keys = {};
  for (let i = 0; i < n; i++) keys[`net.ipv4.conf.k${i}.forwarding`] = { value: '1' };
  return stringify({ version: 1, plugins: { sysctl: { keys } } });
}

function bigKeys(bytes) {
  const parts = ['version: 1\nplugins:\n  sysctl:\n    keys:\n'];
  let len = parts[0].length;
  for (let i = 0; len < bytes; i++) {
    const l = `      net.k${i}.x: {value: "1"}\n`;
    parts.push(l);
    len += l.length;
  }
  return parts.join('');
}

function bigContent(bytes) {
  const body = Array.from({ length: 3000 }, (_, i) => `          line ${i} ${'x'.repeat(90)}`).join('\n');
  const parts = ['version: 1\nplugins:\n  files:\n    paths:\n'];
  let len = parts[0].length;
  for (let i = 0; len < bytes; i++) {
    const f = `      /etc/big/f${i}.conf:\n        content: |\n${body}\n`;
    parts.push(f);
    len += f.length;
  }
  return parts.join('');
}

function bigFlow(bytes) {
  return `version: 1\nplugins: {}\ndescription: [${'0,'.repeat(Math.floor(bytes / 2))}0]\n`;
}

/** The longest stretch the event loop stood still while `fn` ran (a 5 ms ticker, as the watchdog's timer). */
async function longestStall(fn) {
  let last = performance.now();
  let stall = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last);
    last = now;
  }, 5);
  let outcome = 'ok';
  const t = performance.now();
  try {
    await fn();
  } catch (err) {
    outcome = err?.kind ?? String(err);
  }
  const total = performance.now() - t;
  await new Promise((r) => setTimeout(r, 50)); // the tick after the work sees its stretch
  clearInterval(tick);
  return { stall_ms: ms(stall), total_ms: ms(total), outcome };
}

export async function run({ progress = () => {} } = {}) {
  const dir = tmp('opd-bench-parse-');
  const rows = [];
  const file = (name, text) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const keys40k = file('keys40k.yaml', keysDoc(40000));
  rows.push(
    paired(
      'opd validate, 40,000 keys in one map (floor: the yaml package reads it)',
      { command: opdCommand('validate', keys40k), env: { OPD_LOG_LEVEL: 'silent' } },
      { command: floor('yaml', keys40k) },
      { target: { ratio: 2 } },
    ),
  );
  progress(`40,000 keys: ${rows.at(-1).ratio}x the yaml package (load ${rows.at(-1).load_after})`);
  const MB30 = 30 * 1024 * 1024;
  const big = [
    ['30 MB, 885,000 keys in one map (refused: over 1,000,000 nodes)', 'keys.yaml', bigKeys(MB30)],
    ['30 MB, file contents in block scalars (validated)', 'content.yaml', bigContent(MB30)],
    ['30 MB, one flow sequence of 15,000,000 numbers (refused: over 1,000,000 nodes)', 'flow.yaml', bigFlow(MB30)],
  ];
  for (const [what, name, text] of big) {
    const f = file(name, text);
    rows.push(
      paired(
        `opd validate, ${what} (floor: node -e 0)`,
        { command: opdCommand('validate', f), env: { OPD_LOG_LEVEL: 'silent' }, ok: refusedOrOk },
        { command: node('-e', '0') },
        { target: { ms: 10000 }, pairs: Number(process.env.OPD_BENCH_PAIRS ?? 5) },
      ),
    );
    progress(`${what}: ${rows.at(-1).opd_ms} ms (load ${rows.at(-1).load_after})`);
  }

  // the daemon's event loop while it reads a new document: before (parse on the main thread)
  // and after (parse in a worker thread, then the checks on the main thread)
  const { loadDocument } = await import(join(ROOT, 'dist/core/document.js'));
  const { loadDocumentOffThread } = await import(join(ROOT, 'dist/core/document-worker.js'));
  const ports = {};
  for (let i = 0; i < 10000; i++) ports[`p${i}`] = { type: 'internal', tag: (i % 4000) + 1 };
  const stalls = [];
  const docs = [
    [
      '10,000 ports (YAML, 660 KB)',
      file('ports.yaml', stringify({ version: 1, plugins: { ovs: { bridges: { b: { ports } } } } })),
    ],
    ['30 MB, 885,000 keys (refused)', join(dir, 'keys.yaml')],
    ['30 MB, file contents', join(dir, 'content.yaml')],
  ];
  for (const [what, f] of docs) {
    const loadBefore = load1();
    const main = await longestStall(() => loadDocument(f));
    const worker = await longestStall(() => loadDocumentOffThread(f));
    stalls.push({
      document: what,
      main_thread_stall_ms: main.stall_ms,
      worker_stall_ms: worker.stall_ms,
      worker_total_ms: worker.total_ms,
      outcome: worker.outcome,
      load_before: loadBefore,
      load_after: load1(),
    });
    progress(`event loop, ${what}: ${main.stall_ms} ms on the main thread, ${worker.stall_ms} ms with the worker`);
  }
  const valid = rows.filter((r) => r.valid === 'yes').length;
  return {
    rows,
    stalls,
    notes: `whole processes, paired with a floor (A B A B …), medians; refused = exit 65 naming the node limit; valid only at a load average below the core count (${valid} of ${rows.length} rows valid in this run). stalls: in process, the longest time the event loop stood still (a 5 ms timer, as the watchdog's ping) while a document was read and parsed, on the main thread (before) and in a worker thread (the daemon now)`,
  };
}
