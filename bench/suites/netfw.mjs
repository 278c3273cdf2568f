/**
 * net + firewall: a no-op diff of N bridges with an address and a route, and of a chain of N
 * rules, inside a network namespace of the benchmark's own. Reports spawned processes (constant
 * whatever N) and wall time, in-process through the engine (dist/).
 */
import { execaSync } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';

const dist = new URL('../../dist/', import.meta.url);
const { prepareFile: prepareWith, computePlan } = await import(new URL('core/engine.js', dist).href);
const { registry } = await import(new URL('plugins/index.js', dist).href);
const prepareFile = (file) => prepareWith(registry, file);
const { execStats, resetExecStats } = await import(new URL('exec.js', dist).href);

function sh(cmd, args, input) {
  return execaSync(cmd, args, { input }).stdout;
}

export async function run() {
  const rows = [];
  const dir = mkdtempSync(join(tmpdir(), 'opd-bench-netfw-'));
  const log = pino({ level: 'silent' });
  for (const n of [10, 100, 250]) {
    const ns = `opdbench-${process.pid}-${n}`;
    sh('ip', ['netns', 'add', ns]);
    try {
      const batch = [];
      const ifaces = [];
      const rules = [];
      for (let i = 0; i < n; i++) {
        const b = `bb${i}`;
        const a = `10.${Math.floor(i / 250)}.${i % 250}.1/24`;
        batch.push(
          `link add name ${b} type bridge`,
          `link set ${b} up`,
          `addr add ${a} dev ${b}`,
          `route add 172.${16 + (i % 16)}.${i % 250}.0/24 via 10.${Math.floor(i / 250)}.${i % 250}.254 dev ${b}`,
        );
        ifaces.push(
          `      ${b}: { kind: bridge, up: true, addresses: ["${a}"], routes: { "172.${16 + (i % 16)}.${i % 250}.0/24": { via: 10.${Math.floor(i / 250)}.${i % 250}.254 } } }`,
        );
        rules.push(
          `              - { saddr: 10.${Math.floor(i / 250)}.${i % 250}.0/24, proto: tcp, dport: ${1000 + i}, action: accept }`,
        );
      }
      sh('ip', ['-n', ns, '-batch', '-'], batch.join('\n') + '\n');
      const fwText = `table inet opd {\n chain input {\n  type filter hook input priority 0; policy accept;\n${rules.map((_, i) => `  ip saddr 10.${Math.floor(i / 250)}.${i % 250}.0/24 tcp dport ${1000 + i} accept`).join('\n')}\n }\n}\n`;
      sh('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], fwText);
      const file = join(dir, `state-${n}.yaml`);
      writeFileSync(
        file,
        `version: 1\nplugins:\n  net:\n    interfaces:\n${ifaces.join('\n')}\n  firewall:\n    tables:\n      opd:\n        chains:\n          input:\n            type: filter\n            hook: input\n            priority: 0\n            rules:\n${rules.join('\n')}\n`,
      );
      const prep = await prepareFile(file);
      const settings = { netns: ns };
      await computePlan(prep, { settings, log }); // warm
      resetExecStats();
      const t0 = performance.now();
      const { plan } = await computePlan(prep, { settings, log });
      const ms = performance.now() - t0;
      const st = execStats();
      rows.push({
        resources: `${n} bridges + ${n} rules`,
        changes: plan.changes.length,
        processes: st.spawned,
        by_command: JSON.stringify(st.byCommand),
        ms: Math.round(ms),
      });
    } finally {
      sh('ip', ['netns', 'del', ns]);
    }
  }
  return {
    name: 'netfw',
    rows,
    notes:
      'no-op diff (zero changes expected); processes: ip (addr + 2 route reads), nft (list ruleset) and unshare (rule canonicalization), constant in N',
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await run();
  console.table(r.rows);
}
