// No-op diff over 20 real libvirt domains (64 MiB, one disk volume and one NIC on a NAT network
// each; a quarter of them running under KVM) plus a raw-XML domain: virsh processes per read
// (execStats) and time, in process and through the CLI; and `opd show`.
// Needs libvirtd: scripts/backends/libvirt.sh up.
import { execa } from 'execa';
import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPD = join(ROOT, 'bin/opd.js');
const N = 20;
const RUNS = 5;
const URI = 'qemu:///system';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run({ progress = () => {} } = {}) {
  const { prepareFile: prepareWith, computePlan } = await import('../../dist/core/engine.js');
  const { registry } = await import('../../dist/plugins/index.js');
  const prepareFile = (file) => prepareWith(registry, file);
  const { execStats, resetExecStats } = await import('../../dist/exec.js');
  const { pino } = await import('pino');
  await execa('bash', [join(ROOT, 'scripts/backends/libvirt.sh'), 'up']);
  const dir = mkdtempSync(join(tmpdir(), 'opd-bench-libvirt-'));
  chmodSync(dir, 0o755);
  const env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_LIBVIRT_URI: URI, OPD_LOG_LEVEL: 'warn' };
  const tag = Math.random().toString(36).slice(2, 6);
  const P = `opd-b-${tag}`;
  const names = Array.from({ length: N }, (_, i) => `${P}-${String(i).padStart(2, '0')}`);
  const net = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
  const body = (absent) => {
    const l = ['version: 1', 'plugins:', '  libvirt:'];
    l.push(
      '    networks:',
      `      ${P}-net: ${absent ? '{ state: absent }' : `{ forward: nat, ip: { address: ${net}.1, prefix: 24, dhcp: { start: ${net}.10, end: ${net}.200 } }, active: true }`}`,
    );
    l.push(
      '    pools:',
      `      ${P}-pool:`,
      ...(absent
        ? ['        state: absent']
        : [
            `        type: dir`,
            `        path: ${join(dir, 'pool')}`,
            '        volumes:',
            ...names.map((n) => `          ${n}.qcow2: { capacity: 16M, format: qcow2 }`),
          ]),
    );
    l.push('    domains:');
    names.forEach((n, i) =>
      l.push(
        absent
          ? `      ${n}: { state: absent, shutdown_timeout: 0 }`
          : `      ${n}: { memory: 64M, vcpus: 1, disks: { vda: { pool: ${P}-pool, volume: ${n}.qcow2, format: qcow2 } }, interfaces: [{ network: ${P}-net }], graphics: { type: vnc }, serial: pty, running: ${i % 4 === 0}, autostart: false }`,
      ),
    );
    l.push(
      absent
        ? `      ${P}-raw: { state: absent }`
        : `      ${P}-raw: { running: false, xml: "<domain type='kvm'><name>${P}-raw</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices><serial type='pty'/></devices></domain>" }`,
    );
    return l.join('\n') + '\n';
  };
  const file = join(dir, 'state.yaml');
  writeFileSync(file, body(false));
  const rows = [];
  try {
    progress(`defining ${N + 1} domains, ${N} volumes, 1 network`);
    const t0 = Date.now();
    const ap = await execa('node', [OPD, 'apply', file], { env, reject: false });
    if (ap.exitCode !== 0) throw new Error(`setup apply failed: ${ap.stdout}\n${ap.stderr}`);
    const setupMs = Date.now() - t0;
    const settings = { libvirtUri: URI };
    const log = pino({ level: 'silent' });
    const prep = await prepareFile(file);
    const times = [];
    let stats;
    let changes = 0;
    for (let i = 0; i < RUNS; i++) {
      resetExecStats();
      const t = process.hrtime.bigint();
      const c = await computePlan(prep, { settings, log });
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      stats = execStats();
      changes = c.plan.changes.length;
    }
    rows.push({
      case: 'no-op diff, in process (read + diff + plan)',
      domains: N + 1,
      objects: N * 2 + 3,
      median_ms: Math.round(median(times)),
      processes: stats.spawned,
      virsh: stats.byCommand.virsh ?? 0,
      changes,
    });
    const plug = (await import('../../dist/plugins/libvirt/index.js')).default;
    const rd = [];
    for (let i = 0; i < RUNS; i++) {
      resetExecStats();
      const t = process.hrtime.bigint();
      await plug.read({ settings, log }, prep.doc.plugins.libvirt);
      rd.push(Number(process.hrtime.bigint() - t) / 1e6);
      stats = execStats();
    }
    rows.push({
      case: 'plugin read only (one virsh batch)',
      domains: N + 1,
      objects: N * 2 + 3,
      median_ms: Math.round(median(rd)),
      processes: stats.spawned,
      virsh: stats.byCommand.virsh ?? 0,
      changes: '-',
    });
    const cli = [];
    let code = -1;
    for (let i = 0; i < RUNS; i++) {
      const t = Date.now();
      const r = await execa('node', [OPD, 'diff', file], { env, reject: false });
      cli.push(Date.now() - t);
      code = r.exitCode;
    }
    rows.push({
      case: 'opd diff (CLI, whole process)',
      domains: N + 1,
      objects: N * 2 + 3,
      median_ms: median(cli),
      processes: 1,
      virsh: 1,
      changes: code === 0 ? 0 : `exit ${code}`,
    });
    const st = [];
    for (let i = 0; i < RUNS; i++) {
      resetExecStats();
      const t = process.hrtime.bigint();
      await plug.show({ settings, log }, { all: false });
      st.push(Number(process.hrtime.bigint() - t) / 1e6);
      stats = execStats();
    }
    rows.push({
      case: 'show (all networks, pools, volumes, domains)',
      domains: N + 1,
      objects: N * 2 + 3,
      median_ms: Math.round(median(st)),
      processes: stats.spawned,
      virsh: stats.byCommand.virsh ?? 0,
      changes: '-',
    });
    rows.push({
      case: 'setup apply (define all, start 5 under KVM)',
      domains: N + 1,
      objects: N * 2 + 3,
      median_ms: setupMs,
      processes: '-',
      virsh: '-',
      changes: N * 2 + 3 + N / 4,
    });
  } finally {
    progress('removing what the bench created');
    writeFileSync(file, body(true));
    await execa('node', [OPD, 'apply', file], { env, reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    name: 'libvirt',
    rows,
    notes:
      'a read is ONE virsh process whatever the number of objects: a stdin batch of 10 list commands plus one dumpxml per named domain/network/pool/volume (names validated against a strict pattern first); show() needs 3 (lists, definitions, volumes). Apply runs one virsh process per step.',
  };
}
