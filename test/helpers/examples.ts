/**
 * End-to-end runs of the documents under examples/ on this machine kind (Debian 12, root, the
 * namespaced systemd, no loadable kernel modules), safely on a shared machine:
 * - the network parts run in a network namespace of the test's own (OPD_NETNS, or the whole opd
 *   inside `ip netns exec` when sysctl net.* keys are part of the document);
 * - databases run on private servers (scripts/backends/databases.sh), LXC in a private lxcpath
 *   next to a private Open vSwitch (test/helpers/lxc.ts);
 * - HOST DAEMONS: a few units in the examples are real Debian daemons that this shared machine
 *   already runs privately for the other tests (libvirtd in its own netns, the private OVS and
 *   database servers). Starting the Debian units too would take over their sockets under /run.
 *   For those units only, the test applies the example with `active_state` left out (enabled
 *   is still applied), and checks with the unmodified example that they are the ONLY pending
 *   changes afterwards. Everything else is the example exactly as shipped.
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { expect } from 'vitest';
import { OPD, ROOT, tmp, type OpdRun } from './opd.js';
import { unmetChecks } from './host.js';

export const EXAMPLES = join(ROOT, 'examples');

/** The example with `active_state` removed from the named host-daemon units; returns its path. */
export function withoutStarting(name: string, units: string[], dir = tmp('opd-e2e-doc-')): string {
  const src = join(EXAMPLES, name);
  const doc = parse(readFileSync(src, 'utf8')) as {
    plugins: { systemd?: { units?: Record<string, Record<string, unknown>> } };
  };
  for (const u of units) {
    const spec = doc.plugins.systemd?.units?.[u];
    if (!spec) throw new Error(`${name} has no unit ${u}`);
    delete spec.active_state;
  }
  const out = join(dir, name.replace(/\.json$/, '.yaml'));
  writeFileSync(out, stringify(doc));
  return out;
}

/**
 * The example adapted to this host: the named host-daemon units are not started (see above),
 * and the precondition fields this host cannot meet (no /dev/kvm on a machine of this kind
 * without nested virtualization, too little memory, CPUs or disk) are left out. `unmet` lists
 * them per requirement, so that the test first asserts the unmodified example is blocked by
 * exactly these (see expectPreconditions) and then converges the rest.
 */
export function forThisHost(
  name: string,
  units: string[],
  dir = tmp('opd-e2e-doc-'),
): { doc: string; unmet: Record<string, string[]> } {
  const base = withoutStarting(name, units, dir);
  const doc = parse(readFileSync(base, 'utf8')) as {
    plugins: { checks?: { require?: Record<string, Record<string, unknown>> } };
  };
  const unmet: Record<string, string[]> = {};
  for (const [req, spec] of Object.entries(doc.plugins.checks?.require ?? {})) {
    const fields = unmetChecks(spec);
    if (!fields.length) continue;
    unmet[req] = fields.sort();
    for (const f of fields) delete spec[f];
    // a requirement with nothing left (all its checks unmet here) goes: an empty one is invalid
    if (!Object.keys(spec).filter((k) => k !== 'depends_on').length) delete doc.plugins.checks!.require![req];
  }
  if (doc.plugins.checks?.require && !Object.keys(doc.plugins.checks.require).length) delete doc.plugins.checks;
  writeFileSync(base, stringify(doc));
  return { doc: base, unmet };
}

/**
 * The unmodified example's preconditions as this host meets them: `opd diff` blocks on exactly
 * the `unmet` fields (none on a KVM host of the guide's size), and an apply of it changes
 * nothing when any is unmet.
 */
export async function expectPreconditions(
  run: (args: string[]) => Promise<OpdRun>,
  original: string,
  unmet: Record<string, string[]>,
): Promise<void> {
  const d = await run(['diff', original, '-o', 'json']);
  const blocked: Record<string, string[]> = {};
  for (const c of (JSON.parse(d.stdout) as { changes: { address: string; action: string; ops?: { path: string }[] }[] })
    .changes) {
    if (c.action !== 'check') continue;
    blocked[c.address.split('/').pop()!] = [...new Set((c.ops ?? []).map((o) => o.path.split('/')[1]))].sort();
  }
  expect(blocked).toEqual(unmet);
  if (!Object.keys(unmet).length) return;
  const a = await run(['apply', original]);
  expect(a.code, a.stdout + a.stderr).toBe(1);
  for (const [req, fields] of Object.entries(unmet)) {
    expect(a.stdout).toContain(`blocked checks/require/${req}`);
    for (const f of fields) expect(a.stdout).toContain(`${f}:`);
  }
  expect(a.stdout).toContain('nothing was applied');
}

/** Only the named plugin sections of an example (e.g. its packages, to install them outside a
 * network namespace that has no route to the package mirror); returns its path. */
export function sectionsOf(
  name: string,
  plugins: string[],
  dir = tmp('opd-e2e-doc-'),
  vars: Record<string, string | number> = {},
): string {
  const doc = parse(readFileSync(join(EXAMPLES, name), 'utf8')) as {
    params?: Record<string, Record<string, unknown>>;
    plugins: Record<string, unknown>;
  };
  doc.plugins = Object.fromEntries(Object.entries(doc.plugins).filter(([k]) => plugins.includes(k)));
  // only the parameters the kept sections use (an unused secret's file need not exist), with
  // values given as declared defaults (for runs that cannot pass --var, such as a boot unit)
  const used = stringify(doc.plugins);
  for (const k of Object.keys(doc.params ?? {})) if (!used.includes(`\${param.${k}}`)) delete doc.params![k];
  for (const [k, v] of Object.entries(vars)) {
    if (!doc.params?.[k]) throw new Error(`${name} declares no parameter ${k}`);
    doc.params[k].default = v;
  }
  const out = join(dir, `${plugins.join('-')}-of-${name.replace(/\.json$/, '.yaml')}`);
  writeFileSync(out, stringify(doc));
  return out;
}

/** apt is shared by every test on this machine: applies (which may install packages) hold its lock. */
export const APT_LOCK = '/tmp/opd-apt.lock';
const locked = (args: string[], argv: string[]) => (args[0] === 'apply' ? ['flock', APT_LOCK, ...argv] : argv);

/** Run the built opd (inside a network namespace: `ip netns exec NS node bin/opd.js …`). */
export async function opdIn(netns: string | undefined, args: string[], env: Record<string, string>): Promise<OpdRun> {
  const argv = locked(args, [...(netns ? ['ip', 'netns', 'exec', netns] : []), 'node', OPD, ...args]);
  const r = await execa(argv[0], argv.slice(1), {
    reject: false,
    env: { OPD_LOG_LEVEL: 'warn', ...env },
    timeout: 900_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Addresses of the changes a `diff -o json` output lists. */
export function pending(r: OpdRun): string[] {
  const j = JSON.parse(r.stdout) as { changes: { address: string }[] };
  return [...new Set(j.changes.map((c) => c.address))].sort();
}

export const sysenv = { SYSTEMCTL_FORCE_BUS: '1' };
export async function systemctl(args: string[]): Promise<string> {
  return String((await execa('systemctl', args, { env: sysenv, reject: false })).stdout).trim();
}

/** Private PostgreSQL + MariaDB (scripts/backends/databases.sh); returns their endpoint env. */
export async function startDatabases(
  dir: string,
  pgPort: number,
  opts: { netns?: string; pgListen?: string } = {},
): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
  const script = join(ROOT, 'scripts/backends/databases.sh');
  // in a network namespace of the test's own, PostgreSQL may listen on TCP (pgListen) there only
  const argv = [...(opts.netns ? ['ip', 'netns', 'exec', opts.netns] : []), 'bash', script, 'up', dir, String(pgPort)];
  const r = await execa(argv[0], argv.slice(1), {
    reject: false,
    env: opts.pgListen ? { OPD_PG_LISTEN: opts.pgListen } : {},
  });
  if (r.exitCode !== 0) throw new Error(`databases.sh up failed (exit ${r.exitCode}): ${r.stderr}`);
  const env: Record<string, string> = {};
  for (const line of String(r.stdout).split('\n')) {
    const m = /^(OPD_[A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  if (!env.OPD_PG_HOST || !env.OPD_MYSQL_SOCKET) throw new Error(`databases.sh up printed no endpoints: ${r.stdout}`);
  return { env, stop: async () => void (await execa('bash', [script, 'down', dir], { reject: false })) };
}

export async function exists(cmd: string, args: string[]): Promise<boolean> {
  return (await execa(cmd, args, { reject: false })).exitCode === 0;
}

/** Edit a (host-adapted) document in place: `fn` gets the parsed YAML. */
export function editDoc(
  path: string,
  fn: (doc: {
    params?: Record<string, unknown>;
    plugins: Record<string, Record<string, Record<string, Record<string, unknown>>>>;
  }) => void,
): string {
  const doc = parse(readFileSync(path, 'utf8'));
  fn(doc);
  writeFileSync(path, stringify(doc));
  return path;
}

/** The example's applies exit 0 and the second says "no changes" (the guide applied twice). */
export async function expectSecondApplyNoChanges(run: (args: string[]) => Promise<OpdRun>, doc: string): Promise<void> {
  const again = await run(['apply', doc]);
  expect(again.code, again.stdout + again.stderr).toBe(0);
  expect(again.stdout).toContain('no changes: the host matches the document');
}

/**
 * Make a network namespace the test created visible to the namespaced systemd (whose mount
 * namespace has private propagation, so /run/netns/<name> is only an empty file there): a unit
 * can then run in it with NetworkNamespacePath=/run/netns/<name>. Undo with unbindNetnsFromSystemd.
 */
export async function bindNetnsIntoSystemd(name: string): Promise<void> {
  const sd = await systemdPid();
  // --no-canonicalize: mount(8) would otherwise resolve /proc/self/fd/3 to its link text,
  // /run/netns/<name>, which in systemd's namespace is the empty placeholder file, and bind that
  // file onto itself (systemd then fails the unit: "Failed to open network namespace path …:
  // Invalid argument", status 225/NETWORK). The magic link itself is the namespace.
  const r = await execa(
    'bash',
    [
      '-c',
      `exec 3</run/netns/${name}; nsenter --target ${sd} --mount --pid -- sh -c 'mount --no-canonicalize --bind /proc/self/fd/3 /run/netns/${name}'`,
    ],
    { reject: false },
  );
  if (r.exitCode !== 0) throw new Error(`cannot show netns ${name} to the namespaced systemd: ${r.stderr}`);
  const check = await execa(
    'nsenter',
    ['--target', String(sd), '--mount', '--pid', '--', 'stat', '-f', '-c', '%T', `/run/netns/${name}`],
    { reject: false },
  );
  if (!/nsfs/.test(String(check.stdout)))
    throw new Error(`netns ${name} is not bound in the namespaced systemd (${check.stdout}${check.stderr})`);
}

export async function unbindNetnsFromSystemd(name: string): Promise<void> {
  const sd = await systemdPid().catch(() => undefined);
  // --pid too: umount reads /proc/self/mountinfo, which only the namespace's own /proc has
  if (sd)
    await execa('nsenter', ['--target', String(sd), '--mount', '--pid', '--', 'umount', `/run/netns/${name}`], {
      reject: false,
    });
}

async function systemdPid(): Promise<number> {
  const unshare = readFileSync('/run/opd-systemd-unshare.pid', 'utf8').trim();
  const r = await execa('pgrep', ['-P', unshare], { reject: false });
  const pid = Number(String(r.stdout).trim().split('\n')[0]);
  if (!pid) throw new Error('the namespaced systemd is not running (scripts/backends/systemd.sh up)');
  return pid;
}
