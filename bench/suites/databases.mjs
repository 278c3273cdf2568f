// databases: client processes per read and per apply, and wall time, for N roles+databases on
// each engine (private servers from scripts/backends/databases.sh). Reads must stay at one
// process per engine whatever N is.
import { execa } from 'execa';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function docFor(n, prefix, state = '') {
  const lines = ['version: 1', 'plugins:', '  databases:'];
  const st = state ? `state: ${state}, allow_destroy: true, ` : '';
  lines.push('    pg_roles:');
  for (let i = 0; i < n; i++)
    lines.push(`      ${prefix}_r${i}: { ${st}${state ? '' : `password: "bench-${i}", login: true`} }`);
  lines.push('    pg_databases:');
  for (let i = 0; i < n; i++)
    lines.push(
      `      ${prefix}_d${i}: { ${st}${state ? '' : `owner: ${prefix}_r${i}, grants: { ${prefix}_r${i}: [ALL] }`} }`,
    );
  lines.push('    mysql_users:');
  for (let i = 0; i < n; i++)
    lines.push(`      ${prefix}_u${i}@localhost: { ${st}${state ? '' : `password: "bench-${i}"`} }`);
  lines.push('    mysql_databases:');
  for (let i = 0; i < n; i++)
    lines.push(`      ${prefix}_m${i}: { ${st}${state ? '' : `grants: { ${prefix}_u${i}@localhost: [ALL] }`} }`);
  return lines.join('\n') + '\n';
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'opd-bench-db-'));
  chmodSync(dir, 0o755);
  const srv = join(dir, 'servers');
  const up = await execa('bash', [join(ROOT, 'scripts/backends/databases.sh'), 'up', srv, '55499']);
  const env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl') };
  for (const l of up.stdout.split('\n')) {
    const m = /^(OPD_[A-Z_]+)=(.*)$/.exec(l);
    if (m) env[m[1]] = m[2];
  }
  const settings = { pgHost: env.OPD_PG_HOST, pgPort: env.OPD_PG_PORT, mysqlSocket: env.OPD_MYSQL_SOCKET };
  const { execStats, resetExecStats } = await import('../../dist/exec.js');
  const plugin = (await import('../../dist/plugins/databases/index.js')).default;
  const YAML = (await import('yaml')).default;
  const log = { warn() {}, info() {}, debug() {}, error() {}, trace() {} };
  const opd = async (args) => {
    const t = Date.now();
    const r = await execa('node', [join(ROOT, 'bin/opd.js'), ...args], {
      env: { ...process.env, ...env },
      reject: false,
    });
    return { ms: Date.now() - t, code: r.exitCode, stdout: r.stdout };
  };
  const rows = [];
  try {
    for (const n of [1, 10, 50]) {
      const prefix = `b${n}`;
      const f = join(dir, `${prefix}.yaml`);
      writeFileSync(f, docFor(n, prefix));
      const apply = await opd(['apply', f]);
      const again = await opd(['apply', f]);
      const desired = plugin.normalize(YAML.parse(docFor(n, prefix)).plugins.databases, { remap() {} });
      resetExecStats();
      const t = Date.now();
      await plugin.read({ settings, log }, desired);
      const readMs = Date.now() - t;
      const readProcs = execStats().spawned;
      const g = join(dir, `${prefix}-absent.yaml`);
      writeFileSync(g, docFor(n, prefix, 'absent'));
      const drop = await opd(['apply', g]);
      rows.push({
        resources: n * 4,
        grants: n * 2,
        apply_ms: apply.ms,
        apply_ok: apply.code === 0,
        reapply_ms: again.ms,
        reapply_noop: /no changes/.test(again.stdout),
        read_ms: readMs,
        read_processes: readProcs,
        drop_ms: drop.ms,
        drop_ok: drop.code === 0,
      });
    }
  } finally {
    await execa('bash', [join(ROOT, 'scripts/backends/databases.sh'), 'down', srv], { reject: false });
  }
  return {
    name: 'databases',
    rows,
    notes:
      'wall times include node start-up of each opd run on a shared, loaded machine; read_processes counts psql/mysql client processes of one in-process read() (1 per engine, independent of N)',
  };
}
