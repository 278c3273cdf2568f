// opd beside Ansible's openvswitch modules (the openvswitch.openvswitch collection, shipped in
// Debian's `ansible` package) on the same kind of private OVS (ovsdb-server + ovs-vswitchd,
// netdev datapath): 20 bridges with one internal port each. Both as a user runs them, whole
// processes timed from outside and paired (lib.mjs `paired`: opd A, Ansible B, A B A B …):
//   - first converge: each run on a fresh OVS (made and removed around the run, untimed);
//   - no-op rerun: each tool on an OVS it converged once; opd must say "no changes", Ansible
//     "changed=0".
// The playbook is the one a skilled user writes: loops over one list, the datapath type set in
// the same ovs-vsctl call that creates the bridge (openvswitch_bridge `set`), no fact gathering,
// pipelining on. Debian's ansible is installed by this suite when it is missing (apt-get, as
// root; never in tests or CI).
//   npm run bench -- ansible
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ovsUp, opdCommand, paired, sh, tmp } from './lib.mjs';

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

function playbook() {
  const items = names()
    .map(({ br, port, tag }) => `      - { br: ${br}, port: ${port}, tag: ${tag} }`)
    .join('\n');
  return `- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    bridges:
${items}
  tasks:
    - name: bridges, with the netdev datapath
      openvswitch.openvswitch.openvswitch_bridge:
        bridge: "{{ item.br }}"
        set: "bridge {{ item.br }} datapath_type=netdev"
        state: present
        database_socket: "{{ db }}"
      loop: "{{ bridges }}"
    - name: internal ports
      openvswitch.openvswitch.openvswitch_port:
        bridge: "{{ item.br }}"
        port: "{{ item.port }}"
        tag: "{{ item.tag }}"
        set: "Interface {{ item.port }} type=internal"
        state: present
        database_socket: "{{ db }}"
      loop: "{{ bridges }}"
`;
}

function ensureAnsible() {
  const have = () => spawnSync('ansible-playbook', ['--version'], { encoding: 'utf8' });
  let v = have();
  if (v.status !== 0 && process.getuid?.() === 0) {
    sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'ansible'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: 'ignore',
    });
    v = have();
  }
  if (v.status !== 0)
    throw new Error(
      'ansible-playbook is missing: apt-get install --no-install-recommends ansible (for this bench only)',
    );
  return v.stdout.split('\n')[0];
}

function bridgeCount(db) {
  return sh('ovs-vsctl', [`--db=${db}`, '--no-wait', 'list-br'])
    .trim()
    .split('\n')
    .filter(Boolean).length;
}

export async function run({ progress = () => {} } = {}) {
  const version = ensureAnsible();
  const dir = tmp();
  const docFile = join(dir, 'state.json');
  writeFileSync(docFile, opdDoc());
  const play = join(dir, 'play.yml');
  writeFileSync(play, playbook());
  const ansibleEnv = (ovs) => ({
    // the modules run ovs-vsctl --db=<database_socket>; OVS_RUNDIR too, for anything they run without it
    OVS_RUNDIR: ovs.dir,
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_PIPELINING: 'True',
    ANSIBLE_LOCALHOST_WARNING: 'false',
    ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false',
    ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
  });
  const ansible = (ovs) => ['ansible-playbook', ['-i', 'localhost,', '-e', `db=${ovs.db}`, play]];
  const opdEnv = (ovs, audit) => ({ OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit, OPD_LOG_LEVEL: 'silent' });
  const converged = (ovs) => {
    if (bridgeCount(ovs.db) !== BRIDGES) throw new Error(`expected ${BRIDGES} bridges, found ${bridgeCount(ovs.db)}`);
  };

  // first converge: a fresh OVS for every run
  const fresh = (kind) => {
    const side = {};
    side.setup = () => {
      side.ovs = ovsUp(true);
      side.env = kind === 'opd' ? opdEnv(side.ovs, join(tmp(), 'audit.jsonl')) : ansibleEnv(side.ovs);
    };
    side.teardown = () => {
      try {
        converged(side.ovs);
      } finally {
        side.ovs.down();
      }
    };
    Object.defineProperty(side, 'command', {
      get: () => (kind === 'opd' ? opdCommand('apply', docFile) : ansible(side.ovs)),
    });
    return side;
  };
  const rows = [];
  rows.push(
    paired(
      `first converge, ${BRIDGES} bridges + ${BRIDGES} internal ports (opd against Ansible)`,
      fresh('opd'),
      fresh('ansible'),
      {
        target: { speedup: 50 },
        pairs: Number(process.env.OPD_BENCH_PAIRS ?? 5),
      },
    ),
  );
  progress(`first converge: opd ${rows[0].opd_ms} ms, Ansible ${rows[0].floor_ms} ms (load ${rows[0].load_after})`);

  // no-op rerun: each on an OVS it converged once
  const o = ovsUp(true);
  const a = ovsUp(true);
  try {
    const audit = join(tmp(), 'audit.jsonl');
    const [cmd, args] = opdCommand('apply', docFile);
    sh(cmd, args, { env: { ...process.env, ...opdEnv(o, audit) } });
    const [acmd, aargs] = ansible(a);
    sh(acmd, aargs, { env: { ...process.env, ...ansibleEnv(a) } });
    converged(o);
    converged(a);
    rows.push(
      paired(
        'no-op rerun (opd against Ansible)',
        {
          command: opdCommand('apply', docFile),
          env: opdEnv(o, audit),
          ok: (r) => r.status === 0 && /no changes/.test(r.stdout),
        },
        { command: ansible(a), env: ansibleEnv(a), ok: (r) => r.status === 0 && /changed=0/.test(r.stdout) },
        { target: { speedup: 100 }, pairs: Number(process.env.OPD_BENCH_PAIRS ?? 5) },
      ),
    );
    progress(`no-op rerun: opd ${rows[1].opd_ms} ms, Ansible ${rows[1].floor_ms} ms (load ${rows[1].load_after})`);
  } finally {
    o.down();
    a.down();
  }
  return {
    rows,
    notes: `${version} with the openvswitch.openvswitch collection (Debian's ansible package): one play, two looped tasks (openvswitch_bridge with set datapath_type=netdev, openvswitch_port), connection local, no facts, pipelining; opd apply of the same document; each tool on a private ovsdb-server + ovs-vswitchd (netdev); whole processes paired, opd A, Ansible B; speedup = Ansible / opd (median of the pairs); valid only at a load average below the core count`,
  };
}
