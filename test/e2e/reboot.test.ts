/**
 * Reboot-safe networking (issue 14): the network-level part of a document survives a reboot
 * through packaging/systemd/opd-boot.service, before network-online.target, whether or not the
 * daemon runs. Tested with the network parts of examples/opdbus-full-mode.yaml (OVS bridges on a
 * private ovsdb, eth0 taken over by ovsbr0 with its address and default route) and
 * examples/nqrust-microvm-host.yaml (bridge fcbr0, nftables table, net.ipv4.ip_forward).
 *
 * The machine of each scenario lives in the namespaced systemd (scripts/backends/systemd.sh):
 * - `<id>-hw.service` (PrivateNetwork=yes) is the hardware: a FRESH network namespace at every
 *   start with the NIC eth0 (a veth) and, for op-dbus, the host's native network configuration
 *   that puts 192.168.1.10/24 and the default route on eth0 at every boot;
 * - `<id>-ovsdb.service` and `<id>-vswitchd.service` are Open vSwitch (a private database file
 *   that persists across reboots, as /etc/openvswitch/conf.db does; vswitchd in that namespace);
 * - `<id>-opd-boot.service` is the shipped unit file unchanged, with a drop-in that joins the
 *   namespace and points opd at the test's document, database and audit trail;
 * - `<id>-probe.service`, ordered after opd-boot and Before=network-online.target, records the
 *   state of the namespace at that moment.
 * A reboot: every unit of the machine stops (the processes die and the namespace with its links,
 * addresses, routes, nft tables and sysctl values is thrown away), network-online.target stops,
 * then network-online.target is started again, which pulls in opd-boot and the probe through
 * their [Install] WantedBy=network-online.target (runtime-enabled). The shared systemd itself is
 * not restarted: other test files use it in parallel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { OPD, ROOT, tmp, uniq } from '../helpers/opd.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { sectionsOf, systemctl } from '../helpers/examples.js';

const UNIT_DIR = '/run/systemd/system';
const SHIPPED = readFileSync(join(ROOT, 'packaging/systemd/opd-boot.service'), 'utf8');

interface Scenario {
  example: string;
  sections: string[];
  /** values of the example's parameters (given to the boot unit's document as defaults) */
  vars?: Record<string, string>;
  /** native network configuration of the host at every boot (ip argv lists, in the namespace) */
  native: string[][];
}

/** `systemctl show` of some properties, as a map. */
async function show(unit: string, props: string[]): Promise<Record<string, string>> {
  const out = await systemctl(['show', unit, ...props.map((p) => `-p${p}`)]);
  return Object.fromEntries(
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** Sections of the probe's output (`==name` lines start one). */
function sections(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let cur = '';
  for (const l of text.split('\n')) {
    if (l.startsWith('==')) cur = l.slice(2);
    else out[cur] = (out[cur] ?? '') + l + '\n';
  }
  return out;
}

type IpAddr = { ifname: string; addr_info: { family: string; local: string; prefixlen: number; scope: string }[] };
const globalAddrs = (addrs: IpAddr[], dev: string) =>
  (addrs.find((a) => a.ifname === dev)?.addr_info ?? [])
    .filter((a) => a.scope === 'global')
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort();

function machine(s: Scenario) {
  const id = `opdp${uniq(5)}`;
  const D = tmp('opd-reboot-');
  chmodSync(D, 0o755);
  const ovs = join(D, 'ovs');
  const doc = sectionsOf(s.example, s.sections, D, s.vars);
  // a key of the machine's own: the host's default /etc/opd/audit.key may come and go with other tests
  const env = {
    OPD_OVS_DB: `unix:${ovs}/db.sock`,
    OPD_AUDIT_LOG: join(D, 'audit.jsonl'),
    OPD_AUDIT_KEY: join(D, 'audit.key'),
    OPD_ROOT: join(D, 'root'),
  };
  const unit = (n: string) => `${id}-${n}.service`;
  const units = ['probe', 'opd-boot', 'vswitchd', 'ovsdb', 'hw'].map(unit);
  const written: string[] = [];
  const write = (path: string, text: string) => {
    writeFileSync(path, text);
    written.push(path);
  };
  const envLine = Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const join_ = `[Unit]\nJoinsNamespaceOf=${unit('hw')}\n[Service]\nPrivateNetwork=yes\n`;
  let boots = 0;

  return {
    id,
    D,
    doc,
    env,
    async install() {
      mkdirSync(ovs, { recursive: true });
      mkdirSync(env.OPD_ROOT, { recursive: true });
      writeFileSync(env.OPD_AUDIT_KEY, randomBytes(32), { mode: 0o600 });
      await execa('ovsdb-tool', ['create', join(ovs, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
      const ovsEnv = `Environment=OVS_RUNDIR=${ovs} OVS_LOGDIR=${ovs} OVS_DBDIR=${ovs}`;
      write(
        join(UNIT_DIR, unit('hw')),
        [
          '[Unit]',
          'Description=opd reboot test: hardware (a fresh network namespace with the NIC eth0) and native network configuration',
          'DefaultDependencies=no',
          'Before=network-pre.target',
          '[Service]',
          'Type=oneshot',
          'RemainAfterExit=yes',
          'PrivateNetwork=yes',
          `StandardOutput=append:${D}/netns-ids`,
          // per boot, three lines: the namespace, and what it holds before anything configures it
          'ExecStart=/usr/bin/readlink /proc/self/ns/net',
          'ExecStart=/usr/bin/cat /proc/sys/net/ipv4/ip_forward',
          'ExecStart=/usr/sbin/nft -j list ruleset',
          'ExecStart=/usr/sbin/ip link set lo up',
          'ExecStart=/usr/sbin/ip link add eth0 type veth peer name eth0-peer',
          'ExecStart=/usr/sbin/ip link set eth0-peer up',
          'ExecStart=/usr/sbin/ip link set eth0 up',
          ...s.native.map((a) => `ExecStart=/usr/sbin/ip ${a.join(' ')}`),
        ].join('\n') + '\n',
      );
      write(
        join(UNIT_DIR, unit('ovsdb')),
        [
          '[Unit]',
          'Description=opd reboot test: ovsdb-server (private database)',
          'DefaultDependencies=no',
          '[Service]',
          'Type=forking',
          ovsEnv,
          `PIDFile=${ovs}/ovsdb-server.pid`,
          `ExecStart=/usr/sbin/ovsdb-server ${ovs}/conf.db --remote=punix:${ovs}/db.sock --pidfile=${ovs}/ovsdb-server.pid --log-file=${ovs}/ovsdb-server.log --detach --no-chdir`,
          `ExecStartPost=/usr/bin/ovs-vsctl --db=unix:${ovs}/db.sock --no-wait init`,
        ].join('\n') + '\n',
      );
      write(
        join(UNIT_DIR, unit('vswitchd')),
        [
          '[Unit]',
          'Description=opd reboot test: ovs-vswitchd in the machine namespace',
          'DefaultDependencies=no',
          `Requires=${unit('ovsdb')} ${unit('hw')}`,
          `After=${unit('ovsdb')} ${unit('hw')}`,
          'Before=network.target',
          `JoinsNamespaceOf=${unit('hw')}`,
          '[Service]',
          'Type=forking',
          'PrivateNetwork=yes',
          ovsEnv,
          `PIDFile=${ovs}/ovs-vswitchd.pid`,
          `ExecStart=/usr/sbin/ovs-vswitchd unix:${ovs}/db.sock --pidfile=${ovs}/ovs-vswitchd.pid --log-file=${ovs}/ovs-vswitchd.log --detach --no-chdir`,
        ].join('\n') + '\n',
      );
      // the shipped unit, unchanged; the drop-in only points it at this machine
      const exec = /^ExecStart=(.*)$/m
        .exec(SHIPPED)![1]
        .replace('/usr/bin/opd', `${process.execPath} ${OPD}`)
        .replace('/etc/opd/state.yaml', doc);
      write(join(UNIT_DIR, unit('opd-boot')), SHIPPED);
      mkdirSync(join(UNIT_DIR, `${unit('opd-boot')}.d`), { recursive: true });
      write(
        join(UNIT_DIR, `${unit('opd-boot')}.d`, 'machine.conf'),
        [
          `[Unit]`,
          `Requires=${unit('hw')} ${unit('vswitchd')}`,
          `After=${unit('hw')} ${unit('vswitchd')}`,
          'ConditionPathExists=',
          join_.trimEnd(),
          `Environment=${envLine}`,
          `ReadWritePaths=${D}`,
          `StandardOutput=append:${D}/boot.log`,
          `StandardError=append:${D}/boot.log`,
          'ExecStart=',
          `ExecStart=${exec}`,
        ].join('\n') + '\n',
      );
      write(
        join(UNIT_DIR, unit('probe')),
        [
          '[Unit]',
          'Description=opd reboot test: the state just before network-online.target',
          'DefaultDependencies=no',
          `JoinsNamespaceOf=${unit('hw')}`,
          `Requires=${unit('hw')}`,
          `After=${unit('opd-boot')} ${unit('hw')}`,
          'Before=network-online.target',
          '[Service]',
          'Type=oneshot',
          'RemainAfterExit=yes',
          'PrivateNetwork=yes',
          `Environment=${envLine} OPD_LOG_LEVEL=silent`,
          `StandardOutput=append:${D}/probe`,
          'StandardError=journal',
          'ExecStart=/usr/bin/echo ==boot',
          'ExecStart=/usr/bin/readlink /proc/self/ns/net',
          'ExecStart=/usr/bin/echo ==addr',
          'ExecStart=/usr/sbin/ip -j addr show',
          'ExecStart=/usr/bin/echo ==route',
          'ExecStart=/usr/sbin/ip -j route show',
          'ExecStart=/usr/bin/echo ==nft',
          'ExecStart=/usr/sbin/nft -j list ruleset',
          'ExecStart=/usr/bin/echo ==forward',
          'ExecStart=/usr/bin/cat /proc/sys/net/ipv4/ip_forward',
          'ExecStart=/usr/bin/echo ==diff',
          `ExecStart=-${process.execPath} ${OPD} diff --only firewall,net,ovs,sysctl -o json ${doc}`,
        ].join('\n') + '\n',
      );
      await systemctl(['daemon-reload']);
    },
    /** A host pid of a process inside the machine's namespace (ovs-vswitchd), for nsenter. */
    vswitchdPid(): number {
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        try {
          const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          if (cmd[0].endsWith('ovs-vswitchd') && cmd.includes(`unix:${ovs}/db.sock`)) return Number(p);
        } catch {
          /* gone */
        }
      }
      throw new Error('ovs-vswitchd of the machine is not running');
    },
    /** Run a command inside the machine's network namespace. */
    async inNet(argv: string[], extra: Record<string, string> = {}) {
      const r = await execa('nsenter', [`--net=/proc/${this.vswitchdPid()}/ns/net`, ...argv], {
        reject: false,
        env: { OPD_LOG_LEVEL: 'warn', ...env, ...extra },
        timeout: 300_000,
      });
      return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
    opd(args: string[]) {
      return this.inNet([process.execPath, OPD, ...args]);
    },
    async powerOn() {
      const r = await execa('systemctl', ['start', unit('vswitchd')], {
        env: { SYSTEMCTL_FORCE_BUS: '1' },
        reject: false,
      });
      if (r.exitCode !== 0)
        throw new Error(
          `cannot start the machine: ${r.stderr}\n${await systemctl(['status', unit('vswitchd'), unit('hw')])}`,
        );
    },
    /** Everything the machine runs stops; its network namespace and all runtime state go. */
    async powerOff() {
      await execa('systemctl', ['stop', 'network-online.target', ...units], {
        env: { SYSTEMCTL_FORCE_BUS: '1' },
        reject: false,
      });
      await execa('systemctl', ['reset-failed', ...units], { env: { SYSTEMCTL_FORCE_BUS: '1' }, reject: false });
    },
    /** Enable opd-boot (and the probe) the way `systemctl enable` would: WantedBy=network-online.target. */
    async enable() {
      expect(/^WantedBy=.*\bnetwork-online\.target\b/m.test(SHIPPED)).toBe(true);
      const wants = join(UNIT_DIR, 'network-online.target.wants');
      mkdirSync(wants, { recursive: true });
      for (const n of [unit('opd-boot'), unit('probe')]) {
        const l = join(wants, n);
        if (!existsSync(l)) symlinkSync(join(UNIT_DIR, n), l);
        written.push(l);
      }
      await systemctl(['daemon-reload']);
    },
    async boot() {
      boots++;
      rmSync(join(D, 'probe'), { force: true });
      const r = await execa('systemctl', ['start', 'network-online.target'], {
        env: { SYSTEMCTL_FORCE_BUS: '1' },
        reject: false,
        timeout: 600_000,
      });
      if (r.exitCode !== 0) throw new Error(`boot failed: ${r.stderr}`);
      return boots;
    },
    probe: () => sections(readFileSync(join(D, 'probe'), 'utf8')),
    /** Per boot of the hardware: its namespace, and ip_forward and the nft ruleset before anything ran. */
    hwBoots(): { netns: string; forward: string; nft: string }[] {
      const l = readFileSync(join(D, 'netns-ids'), 'utf8').trim().split('\n');
      const out = [];
      for (let i = 0; i + 2 < l.length; i += 3) out.push({ netns: l[i], forward: l[i + 1].trim(), nft: l[i + 2] });
      return out;
    },
    show,
    unit,
    async remove() {
      await this.powerOff();
      for (const p of written.reverse()) rmSync(p, { force: true });
      rmSync(join(UNIT_DIR, `${unit('opd-boot')}.d`), { recursive: true, force: true });
      await systemctl(['daemon-reload']);
      rmSync(D, { recursive: true, force: true });
    },
  };
}

function rebootTest(title: string, s: Scenario, checks: (p: Record<string, string>) => void) {
  describe(title, () => {
    const m = machine(s);
    beforeAll(async () => {
      await ensureSystemd();
      await m.install();
      await m.powerOn();
    });
    afterAll(async () => {
      await m.remove();
    });

    it('converges on the running machine (the first install), then finds nothing left to do', async () => {
      const a = await m.opd(['apply', m.doc]);
      expect(a.code, a.stdout + a.stderr).toBe(0);
      const b = await m.opd(['apply', m.doc]);
      expect(b.code, b.stdout + b.stderr).toBe(0);
      expect(b.stdout).toContain('no changes');
    });

    it('is back before network-online.target after a reboot that threw all runtime state away', async () => {
      await m.enable();
      await m.powerOff();
      await m.powerOn(); // the next boot's hardware: a fresh namespace, eth0 as the native config leaves it
      const fresh = await m.opd(['diff', '--only', 'firewall,net,ovs,sysctl', m.doc]);
      expect(fresh.code, 'the fresh machine must differ from the document: ' + fresh.stdout + fresh.stderr).toBe(2);
      await m.powerOff();
      await m.boot();
      const hw = m.hwBoots();
      expect(hw.length).toBe(3); // the first install, the check above, this boot
      // this boot's namespace was empty before opd-boot: no forwarding, no nft table
      expect(hw[2].forward).toBe('0');
      expect(hw[2].nft).not.toContain('"table"');
      const p = m.probe();
      expect(p.boot.trim(), 'the probe ran in the machine namespace of this boot').toBe(hw[2].netns);
      const plan = JSON.parse(p.diff) as { changes: { address: string }[] };
      expect(
        plan.changes.map((c) => c.address),
        'opd diff before network-online.target',
      ).toEqual([]);
      checks(p);
      const boot = await m.show(m.unit('opd-boot'), ['Result', 'ExecMainStatus', 'ActiveEnterTimestampMonotonic']);
      const probe = await m.show(m.unit('probe'), ['ActiveEnterTimestampMonotonic']);
      const online = await m.show('network-online.target', ['ActiveState', 'ActiveEnterTimestampMonotonic']);
      expect(boot.Result, readFileSync(join(m.D, 'boot.log'), 'utf8')).toBe('success');
      expect(boot.ExecMainStatus).toBe('0');
      expect(online.ActiveState).toBe('active');
      expect(Number(boot.ActiveEnterTimestampMonotonic)).toBeGreaterThan(0);
      expect(Number(boot.ActiveEnterTimestampMonotonic)).toBeLessThanOrEqual(
        Number(probe.ActiveEnterTimestampMonotonic),
      );
      expect(Number(probe.ActiveEnterTimestampMonotonic)).toBeLessThanOrEqual(
        Number(online.ActiveEnterTimestampMonotonic),
      );
    });

    it('records the boot run in an intact audit trail', async () => {
      const v = await m.opd(['audit', 'verify']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      const runs = readFileSync(m.env.OPD_AUDIT_LOG, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"run.start"'));
      expect(runs.length).toBe(2); // the first install and the boot (the no-op apply writes nothing)
    });
  });
}

rebootTest(
  'reboot: the network parts of examples/opdbus-full-mode.yaml',
  {
    example: 'opdbus-full-mode.yaml',
    sections: ['ovs', 'net', 'firewall', 'sysctl'],
    vars: { address: '192.168.1.10', gateway: '192.168.1.1' },
    native: [
      ['addr', 'add', '192.168.1.10/24', 'dev', 'eth0'],
      ['route', 'add', 'default', 'via', '192.168.1.1', 'dev', 'eth0'],
    ],
  },
  (p) => {
    const addrs = JSON.parse(p.addr) as IpAddr[];
    expect(globalAddrs(addrs, 'ovsbr0')).toEqual(['192.168.1.10/24']);
    expect(globalAddrs(addrs, 'mesh')).toEqual(['10.0.0.1/24']);
    expect(globalAddrs(addrs, 'eth0'), 'the native config put it on eth0; the bridge took it over').toEqual([]);
    const routes = JSON.parse(p.route) as { dst: string; gateway?: string; dev: string }[];
    expect(routes.filter((r) => r.dst === 'default').map((r) => `${r.gateway} ${r.dev}`)).toEqual([
      '192.168.1.1 ovsbr0',
    ]);
  },
);

rebootTest(
  'reboot: the network parts of examples/nqrust-microvm-host.yaml',
  { example: 'nqrust-microvm-host.yaml', sections: ['ovs', 'net', 'firewall', 'sysctl'], native: [] },
  (p) => {
    expect(globalAddrs(JSON.parse(p.addr) as IpAddr[], 'fcbr0')).toEqual(['10.0.0.1/24']);
    expect(p.forward.trim()).toBe('1');
    const nft = JSON.parse(p.nft) as {
      nftables: Record<string, { name?: string; family?: string; expr?: unknown[] }>[];
    };
    expect(nft.nftables.some((o) => o.table?.name === 'nqrust' && o.table.family === 'inet')).toBe(true);
    expect(JSON.stringify(nft.nftables.filter((o) => o.rule))).toContain('masquerade');
  },
);
