#!/usr/bin/env node
// A/B of the no-op read+diff+plan of two builds of opd (two checkouts, each built with
// `npm run build`): both engines are loaded into one process and called alternately, K times
// each, so machine load hits both alike. Cases: OVS ports (database only, private ovsdb-server)
// net + firewall in a network namespace of its own, and files under a sandbox root; no shared
// backend is touched.
//   git worktree add /tmp/opd-before <rev> && (cd /tmp/opd-before && npm ci && npm run build)
//   node --expose-gc bench/compare.mjs /tmp/opd-before .     → bench/results/compare.json
// Env: COMPARE_K (runs per side, default 25), COMPARE_OVS (port counts, default 1000,10000),
// COMPARE_NET (bridges and rules, default 100); empty: none.
import { join, resolve } from 'node:path';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
if (process.argv.length < 4) {
  console.error('usage: node --expose-gc bench/compare.mjs BEFORE_DIR AFTER_DIR (two built opd checkouts)');
  process.exit(64);
}
const BEFORE = resolve(process.argv[2]),
  AFTER = resolve(process.argv[3]);
const K = Number(process.env.COMPARE_K ?? 25);
const libB = await import(join(BEFORE, 'bench/suites/lib.mjs'));
const libA = await import(join(AFTER, 'bench/suites/lib.mjs'));
const eB = await libB.engine(),
  eA = await libA.engine();
const now = () => performance.now();
const stats = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return { min: s[0], median: s[Math.floor(s.length / 2)] };
};
const r1 = (x) => Math.round(x * 10) / 10;
const rows = [];
async function ab(name, file, text, settings) {
  const pB = await eB.prepareLoaded(eB.parseText(Buffer.from(text), file));
  const pA = await eA.prepareLoaded(eA.parseText(Buffer.from(text), file));
  const log = eA.log;
  for (const [e, p] of [
    [eB, pB],
    [eA, pA],
  ]) {
    const c = await e.computePlan(p, { settings, log: e.log });
    if (c.plan.changes.length) throw new Error(`${name}: ${c.plan.changes.length} changes, expected none`);
  }
  const spawned = (e, p) => {
    e.resetExecStats();
    return e.computePlan(p, { settings, log: e.log }).then(() => e.execStats().spawned);
  };
  const procs = { before: await spawned(eB, pB), after: await spawned(eA, pA) };
  const tB = [],
    tA = [];
  for (let i = 0; i < K; i++) {
    for (const [e, p, t] of i % 2
      ? [
          [eA, pA, tA],
          [eB, pB, tB],
        ]
      : [
          [eB, pB, tB],
          [eA, pA, tA],
        ]) {
      globalThis.gc?.();
      const t0 = now();
      await e.computePlan(p, { settings, log });
      t.push(now() - t0);
    }
  }
  const b = stats(tB),
    a = stats(tA);
  rows.push({
    case: name,
    before_min_ms: r1(b.min),
    after_min_ms: r1(a.min),
    before_median_ms: r1(b.median),
    after_median_ms: r1(a.median),
    ratio_median: Math.round((a.median / b.median) * 100) / 100,
    ratio_min: Math.round((a.min / b.min) * 100) / 100,
    processes_before: procs.before,
    processes_after: procs.after,
  });
  console.error(JSON.stringify(rows.at(-1)));
}
// OVS, database only
for (const n of (process.env.COMPARE_OVS ?? '1000,10000').split(',').filter(Boolean).map(Number)) {
  const ovs = libA.ovsUp(false);
  try {
    const bridges = {};
    for (let b = 0; b < 10; b++) {
      const ports = {};
      for (let p = 0; p < n / 10; p++) ports[`p${b}x${p}`] = { type: 'internal', tag: (p % 4000) + 1 };
      bridges[`bbr${b}`] = { ports };
    }
    const text = JSON.stringify({ version: 1, plugins: { ovs: { bridges } } });
    const settings = { ovsDb: ovs.db };
    const prep = await eA.prepareLoaded(eA.parseText(Buffer.from(text), `ab-${n}.json`));
    const r = await eA.run(prep, { settings, log: eA.log, auditLog: join(libA.tmp(), 'audit.jsonl') });
    if (r.status !== 'ok') throw new Error('ovs converge failed');
    await ab(`ovs no-op diff, ${n} ports (database only)`, `ab-${n}.json`, text, settings);
  } finally {
    ovs.down();
  }
}
// net + firewall: N bridges with an address and a route and a chain of N rules, in a network
// namespace of the comparison's own (as bench/suites/netfw.mjs)
for (const n of (process.env.COMPARE_NET ?? '100').split(',').filter(Boolean).map(Number)) {
  const ns = `opdcompare-${process.pid}-${n}`;
  const run = (cmd, args, input) => execFileSync(cmd, args, { input, encoding: 'utf8' });
  run('ip', ['netns', 'add', ns]);
  try {
    const batch = [],
      ifaces = [],
      rules = [],
      nft = [];
    for (let i = 0; i < n; i++) {
      const [b, net] = [`bb${i}`, `10.${Math.floor(i / 250)}.${i % 250}`];
      const dst = `172.${16 + (i % 16)}.${i % 250}.0/24`;
      batch.push(`link add name ${b} type bridge`, `link set ${b} up`, `addr add ${net}.1/24 dev ${b}`);
      batch.push(`route add ${dst} via ${net}.254 dev ${b}`);
      ifaces.push(
        `      ${b}: { kind: bridge, up: true, addresses: ["${net}.1/24"], routes: { "${dst}": { via: ${net}.254 } } }`,
      );
      rules.push(`              - { saddr: ${net}.0/24, proto: tcp, dport: ${1000 + i}, action: accept }`);
      nft.push(`  ip saddr ${net}.0/24 tcp dport ${1000 + i} accept`);
    }
    run('ip', ['-n', ns, '-batch', '-'], batch.join('\n') + '\n');
    const table = `table inet opd {\n chain input {\n  type filter hook input priority 0; policy accept;\n${nft.join('\n')}\n }\n}\n`;
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], table);
    const chain = '          input:\n            type: filter\n            hook: input\n            priority: 0\n';
    const text =
      `version: 1\nplugins:\n  net:\n    interfaces:\n${ifaces.join('\n')}\n  firewall:\n    tables:\n      opd:\n` +
      `        chains:\n${chain}            rules:\n${rules.join('\n')}\n`;
    await ab(`net + firewall no-op diff, ${n} bridges + ${n} rules (own netns)`, `netfw-${n}.yaml`, text, {
      netns: ns,
    });
  } finally {
    run('ip', ['netns', 'del', ns]);
  }
}
// files under a sandbox root
{
  const N = 1000,
    work = mkdtempSync(join(tmpdir(), 'opd-ab-files-')),
    root = join(work, 'root');
  let text = 'version: 1\nplugins:\n  files:\n    paths:\n      /etc/opd-bench: { type: directory, mode: "0755" }\n';
  for (let i = 0; i < N; i++)
    text += `      /etc/opd-bench/f${i}.conf: { content: "key = ${i}\\nvalue = ${'x'.repeat(64)}\\n", mode: "0640", owner: root, group: root }\n`;
  const settings = { root };
  const prep = await eA.prepareLoaded(eA.parseText(Buffer.from(text), 'files.yaml'));
  const r = await eA.run(prep, { settings, log: eA.log, auditLog: join(work, 'audit.jsonl') });
  if (r.status !== 'ok') throw new Error('files converge failed');
  await ab(`files no-op diff, ${N + 1} paths`, 'files.yaml', text, settings);
}
mkdirSync(new URL('results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('results/compare.json', import.meta.url),
  JSON.stringify({ before: BEFORE, after: AFTER, k: K, load: loadavg(), rows }, null, 1) + '\n',
);
console.table(rows);
process.exit(0);
