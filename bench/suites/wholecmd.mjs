// Whole-command figures: opd as a user times it. Each row is a whole process timed from outside
// (Node start-up, loading, parsing, set-up, backend calls, audit, exit), paired with its floor,
// also a whole process, A B A B … (lib.mjs `paired`: medians of >= 5 pairs, the ratio taken pair
// by pair, the load average before and after; a row measured at a load >= the number of cores is
// marked invalid). These are issue 31's acceptance rows:
//   npm run bench -- wholecmd                       all of them
//   OPD_BENCH_ROWS=startup,validate npm run bench -- wholecmd   some (startup, validate, diff, cold)
//   OPD_BENCH_BIN=/other/checkout/bin/opd.js …      another build (before/after)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROOT, ovsInsertTxn, ovsUp, opdCommand, paired, sh, tmp } from './lib.mjs';

const ROWS = (process.env.OPD_BENCH_ROWS ?? 'startup,validate,diff,cold').split(',');
const node = (...args) => [process.execPath, args];
const floor = (name, ...args) => node(join(ROOT, 'bench/floors', name), ...args);

/** n ports of type internal with a tag, on 10 bridges (the scale suite's document). */
export function portsDoc(n, { netdev = false } = {}) {
  const bridges = {};
  const per = Math.ceil(n / 10);
  for (let b = 0; b < 10; b++) {
    const ports = {};
    for (let p = 0; p < per && b * per + p < n; p++) ports[`s${b}x${p}`] = { type: 'internal', tag: (p % 4000) + 1 };
    bridges[`sbr${b}`] = netdev ? { datapath_type: 'netdev', ports } : { ports };
  }
  return { version: 1, plugins: { ovs: { bridges } } };
}

const listAll = (db) => [
  'ovs-vsctl',
  [`--db=${db}`, '--format=json', '--', 'list', 'Bridge', '--', 'list', 'Port', '--', 'list', 'Interface'],
];

export async function run({ progress = () => {} } = {}) {
  const rows = [];
  const dir = tmp('opd-bench-wholecmd-');
  const quiet = { OPD_LOG_LEVEL: 'silent' };

  if (ROWS.includes('startup')) {
    rows.push(
      paired(
        'opd --version',
        { command: opdCommand('--version') },
        { command: node('-e', '0') },
        {
          target: { ratio: 1.2 },
        },
      ),
    );
    progress(`--version: ${rows.at(-1).ratio}x node -e 0 (load ${rows.at(-1).load_after})`);
    rows.push(
      paired(
        'opd validate examples/demo.yaml',
        { command: opdCommand('validate', join(ROOT, 'examples/demo.yaml')), env: quiet },
        { command: node('-e', '0') },
        { target: { ratio: 1.5 } },
      ),
    );
    progress(`validate demo: ${rows.at(-1).ratio}x node -e 0 (load ${rows.at(-1).load_after})`);
  }

  if (ROWS.includes('validate')) {
    const doc = portsDoc(10000);
    const yamlFile = join(dir, 'ports10k.yaml');
    const jsonFile = join(dir, 'ports10k.json');
    writeFileSync(yamlFile, stringify(doc));
    writeFileSync(jsonFile, JSON.stringify(doc));
    rows.push(
      paired(
        'opd validate, 10,000-port YAML (floor: the yaml package reads it)',
        { command: opdCommand('validate', yamlFile), env: quiet },
        { command: floor('read-document.mjs', 'yaml', yamlFile) },
        { target: { ms: 500 } },
      ),
    );
    progress(`validate 10k YAML: ${rows.at(-1).opd_ms} ms (load ${rows.at(-1).load_after})`);
    rows.push(
      paired(
        'opd validate, 10,000-port JSON (floor: JSON.parse of it)',
        { command: opdCommand('validate', jsonFile), env: quiet },
        { command: floor('read-document.mjs', 'json', jsonFile) },
        { target: { ms: 300 } },
      ),
    );
    progress(`validate 10k JSON: ${rows.at(-1).opd_ms} ms (load ${rows.at(-1).load_after})`);
  }

  if (ROWS.includes('diff')) {
    // with ovs-vswitchd (netdev datapath): converged once, then the no-op diff against one read
    const ovs = ovsUp(true);
    try {
      const file = join(dir, 'ports1k-netdev.json');
      writeFileSync(file, JSON.stringify(portsDoc(1000, { netdev: true })));
      const env = { ...quiet, OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(dir, 'audit-diff.jsonl') };
      const [cmd, args] = opdCommand('apply', file);
      sh(cmd, args, { env: { ...process.env, ...env } });
      rows.push(
        paired(
          'opd diff, no-op, 1,000 ports with ovs-vswitchd (floor: one ovs-vsctl JSON list of the 3 tables)',
          { command: opdCommand('diff', file), env },
          { command: listAll(ovs.db) },
          { target: { ratio: 1.5 } },
        ),
      );
      progress(`no-op diff 1k: ${rows.at(-1).ratio}x the read (load ${rows.at(-1).load_after})`);
    } finally {
      ovs.down();
    }
  }

  if (ROWS.includes('cold')) {
    // each run on a fresh database (made and removed around the run, untimed)
    const doc = portsDoc(10000);
    const file = join(dir, 'ports10k-cold.json');
    writeFileSync(file, JSON.stringify(doc));
    const txnFile = join(dir, 'ports10k-txn.json');
    writeFileSync(txnFile, JSON.stringify(ovsInsertTxn(doc.plugins.ovs.bridges)));
    const fresh = () => {
      const side = { ovs: undefined };
      side.setup = () => {
        side.ovs = ovsUp(false);
        const run = tmp('opd-bench-cold-');
        side.env = { ...quiet, OPD_OVS_DB: side.ovs.db, OPD_AUDIT_LOG: join(run, 'audit.jsonl') };
      };
      side.teardown = () => side.ovs.down();
      return side;
    };
    const a = fresh();
    const b = fresh();
    // the commands name the socket of the run's own database: resolved when the run starts
    Object.defineProperty(a, 'command', { get: () => opdCommand('apply', file) });
    Object.defineProperty(b, 'command', {
      get: () => floor('ovsdb-transact.mjs', b.ovs.db.slice('unix:'.length), txnFile),
    });
    rows.push(
      paired(
        'opd apply, cold converge of 10,000 OVS ports, database only (floor: one transaction of the same rows)',
        a,
        b,
        { target: { ratio: 2, ms: 3000 } },
      ),
    );
    progress(
      `cold 10k: ${rows.at(-1).opd_ms} ms, ${rows.at(-1).ratio}x the transaction (load ${rows.at(-1).load_after})`,
    );
  }

  const valid = rows.filter((r) => r.valid === 'yes').length;
  return {
    rows,
    notes: `whole processes timed from outside (spawn to exit), each row paired with its floor (a whole process too), A B A B …; medians of the pairs, ratio = median of the per-pair ratios; cpu = user + system of the child (10 ms ticks); valid only when the 1-minute load average before and after was below the number of cores (${valid} of ${rows.length} rows valid in this run)`,
  };
}
