// opd beside Ansible's openvswitch modules (openvswitch.openvswitch collection, shipped in
// Debian's `ansible` package) on the same kind of private OVS (ovsdb-server + ovs-vswitchd,
// netdev datapath): 20 bridges with one internal port each. First converge on a fresh database,
// then the no-op rerun; both tools as a user runs them (a process each, start-up included).
// Install for the bench only: apt-get install --no-install-recommends ansible. Never in tests/CI.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ms, now, ovsUp, sh, tmp } from './lib.mjs';

const BRIDGES = Number(process.env.OPD_BENCH_ANSIBLE_BRIDGES ?? 20);

function names() {
  return Array.from({ length: BRIDGES }, (_, i) => ({ br: `ab${i}`, port: `ap${i}`, tag: i + 1 }));
}

function opdDoc() {
  const bridges = {};
  for (const { br, port, tag } of names())
    bridges[br] = { datapath_type: 'netdev', ports: { [port]: { type: 'internal', tag } } };
  return JSON.stringify({ version: 1, plugins: { ovs: { bridges } } });
}

function playbook(db) {
  const tasks = [];
  for (const { br, port, tag } of names()) {
    tasks.push(
      `    - name: bridge ${br}\n      openvswitch.openvswitch.openvswitch_bridge: { bridge: ${br}, state: present, database_socket: "${db}" }`,
    );
    tasks.push(
      `    - name: ${br} netdev datapath\n      openvswitch.openvswitch.openvswitch_db: { table: Bridge, record: ${br}, col: datapath_type, value: netdev, database_socket: "${db}" }`,
    );
    tasks.push(
      `    - name: port ${port}\n      openvswitch.openvswitch.openvswitch_port: { bridge: ${br}, port: ${port}, tag: "${tag}", set: "Interface ${port} type=internal", state: present, database_socket: "${db}" }`,
    );
  }
  return `- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n${tasks.join('\n')}\n`;
}

function timed(cmd, args, env) {
  const t = now();
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const dt = now() - t;
  if (r.status !== 0 && !(cmd === process.execPath && r.status === 2))
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stdout + r.stderr).slice(-1500)}`);
  return { ms: dt, out: r.stdout };
}

function check(db) {
  const brs = sh('ovs-vsctl', [`--db=${db}`, '--no-wait', 'list-br'])
    .trim()
    .split('\n')
    .filter(Boolean);
  if (brs.length !== BRIDGES) throw new Error(`expected ${BRIDGES} bridges, found ${brs.length}`);
}

export async function run({ progress = () => {} } = {}) {
  const which = spawnSync('ansible-playbook', ['--version'], { encoding: 'utf8' });
  if (which.status !== 0)
    throw new Error(
      'ansible-playbook is not installed: apt-get install --no-install-recommends ansible (for this bench only)',
    );
  const ansibleVersion = which.stdout.split('\n')[0];
  const rows = [];
  const dir = tmp();
  const docFile = join(dir, 'state.json');
  writeFileSync(docFile, opdDoc());
  const play = join(dir, 'play.yml');

  const a = ovsUp(true);
  writeFileSync(play, playbook(a.db));
  let ansibleFirst, ansibleNoop;
  try {
    // the modules run ovs-vsctl --db=<database_socket>; OVS_RUNDIR too, for anything they run without it
    const env = {
      OVS_RUNDIR: a.dir,
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_LOCALHOST_WARNING: 'false',
      ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false',
      ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
    };
    ansibleFirst = timed('ansible-playbook', ['-i', 'localhost,', play], env).ms;
    check(a.db);
    progress(`ansible first converge ${ms(ansibleFirst)} ms`);
    const again = timed('ansible-playbook', ['-i', 'localhost,', play], env);
    if (!/changed=0/.test(again.out)) throw new Error(`ansible rerun changed something: ${again.out.slice(-800)}`);
    ansibleNoop = again.ms;
    progress(`ansible no-op rerun ${ms(ansibleNoop)} ms`);
  } finally {
    a.down();
  }

  const o = ovsUp(true);
  let opdFirst, opdNoop;
  try {
    const env = { OPD_OVS_DB: o.db, OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_LOG_LEVEL: 'silent' };
    opdFirst = timed(process.execPath, [join(ROOT, 'bin/opd.js'), 'apply', docFile], env).ms;
    check(o.db);
    const again = timed(process.execPath, [join(ROOT, 'bin/opd.js'), 'apply', docFile], env);
    if (!/no changes/.test(again.out)) throw new Error(`opd rerun changed something: ${again.out.slice(-800)}`);
    opdNoop = again.ms;
    progress(`opd first converge ${ms(opdFirst)} ms, no-op ${ms(opdNoop)} ms`);
  } finally {
    o.down();
  }
  rows.push({
    run: `first converge (${BRIDGES} bridges + ${BRIDGES} ports)`,
    opd_ms: ms(opdFirst),
    ansible_ms: ms(ansibleFirst),
    ansible_over_opd: Math.round((ansibleFirst / opdFirst) * 10) / 10,
  });
  rows.push({
    run: 'no-op rerun',
    opd_ms: ms(opdNoop),
    ansible_ms: ms(ansibleNoop),
    ansible_over_opd: Math.round((ansibleNoop / opdNoop) * 10) / 10,
  });
  return {
    rows,
    notes: `${ansibleVersion} with the openvswitch.openvswitch collection (openvswitch_bridge, openvswitch_db for datapath_type, openvswitch_port), connection local; opd apply as a process (bin/opd.js); each tool on a fresh private ovsdb-server + ovs-vswitchd (netdev); one run each`,
  };
}
