/**
 * `opd daemon` as a unit of the real (namespaced) systemd: the shipped packaging/systemd/opd.service
 * with ExecStart pointing at this worktree's node + bin/opd.js, the test's endpoints in
 * Environment=, and the minimum overrides a test needs (its temp dirs writable and visible).
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync, rmSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, OPD, uniq } from './opd.js';
import { ensureSystemd } from './systemd.js';

export const SYSTEMCTL_ENV = { SYSTEMCTL_FORCE_BUS: '1' };

export async function systemctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('systemctl', args, { reject: false, env: SYSTEMCTL_ENV });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function busctl(
  args: string[],
  opts: { as?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = opts.as ? ['runuser', '-u', opts.as, '--', 'busctl', ...args] : ['busctl', ...args];
  const r = await execa(argv[0], argv.slice(1), { reject: false, timeout: 120_000 });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Call a method of the daemon returning one string (JSON) and parse it. */
export async function daemonCall(
  member: string,
  opts: { as?: string; dest?: string; path?: string; iface?: string; args?: string[] } = {},
): Promise<unknown> {
  const r = await busctl(
    [
      '--system',
      '--json=short',
      'call',
      opts.dest ?? 'org.opd.Reconciler1',
      opts.path ?? '/org/opd/Reconciler1',
      opts.iface ?? 'org.opd.Reconciler1',
      member,
      ...(opts.args ?? []),
    ],
    { as: opts.as },
  );
  if (r.code !== 0) throw new Error(`busctl ${member} failed (${r.code}): ${r.stderr}`);
  return JSON.parse((JSON.parse(r.stdout) as { data: string[] }).data[0]);
}

/** Install the bus policy (root only owns/mutates) into the system bus and reload it. */
export async function installBusPolicy(): Promise<void> {
  copyFileSync(join(ROOT, 'packaging/dbus/org.opd.Reconciler1.conf'), '/etc/dbus-1/system.d/org.opd.Reconciler1.conf');
  const r = await busctl([
    '--system',
    'call',
    'org.freedesktop.DBus',
    '/org/freedesktop/DBus',
    'org.freedesktop.DBus',
    'ReloadConfig',
  ]);
  if (r.code !== 0) throw new Error(`ReloadConfig failed: ${r.stderr}`);
}

export interface DaemonUnit {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  show(props: string[]): Promise<Record<string, string>>;
  remove(): Promise<void>;
}

export function unitText(opts: { state: string; dir: string; env: Record<string, string>; args?: string[] }): string {
  const shipped = readFileSync(join(ROOT, 'packaging/systemd/opd.service'), 'utf8');
  const exec = [process.execPath, OPD, 'daemon', '--state', opts.state, ...(opts.args ?? [])].join(' ');
  const env = Object.entries({
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    ...(process.env.OPD_AUDIT_KEY ? { OPD_AUDIT_KEY: process.env.OPD_AUDIT_KEY } : {}),
    ...opts.env,
  }).map(([k, v]) => `Environment=${k}=${v}`);
  return (
    shipped
      .replace(/^ExecStart=.*$/m, `ExecStart=${exec}`)
      .replace(/^WatchdogSec=.*$/m, 'WatchdogSec=20s')
      .replace(/^Restart=.*$/m, 'Restart=no')
      .replace(/^\[Service\]$/m, ['[Service]', ...env].join('\n'))
      // the test's private OVS socket and audit trail live in temp dirs of the host's /tmp: the
      // host's /tmp instead of a private one, writable as the private one would be
      .replace(/^PrivateTmp=.*$/m, 'PrivateTmp=no')
      .replace(/^ReadWritePaths=(.*)$/m, `ReadWritePaths=$1 /tmp ${opts.dir}`)
      .replace(/^WantedBy=.*$/m, '')
  );
}

export async function daemonUnit(opts: {
  state: string;
  dir: string;
  env: Record<string, string>;
  args?: string[];
}): Promise<DaemonUnit> {
  await ensureSystemd();
  const name = `opd-test-${uniq(6)}.service`;
  const path = `/run/systemd/system/${name}`;
  writeFileSync(path, unitText(opts));
  const reload = await systemctl(['daemon-reload']);
  if (reload.code !== 0) throw new Error(`daemon-reload failed: ${reload.stderr}`);
  return {
    name,
    async start() {
      const r = await systemctl(['start', name]);
      if (r.code !== 0) {
        const j = await execa('journalctl', ['-u', name, '--no-pager', '-n', '40'], { reject: false });
        throw new Error(`systemctl start ${name} failed: ${r.stderr}\n${j.stdout}`);
      }
    },
    async stop() {
      await systemctl(['stop', name]);
    },
    async show(props) {
      const r = await systemctl(['show', name, ...props.map((p) => `--property=${p}`)]);
      return Object.fromEntries(
        r.stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    },
    async remove() {
      await systemctl(['stop', name]);
      await systemctl(['reset-failed', name]);
      if (existsSync(path)) rmSync(path);
      await systemctl(['daemon-reload']);
    },
  };
}

/** Wait until fn() returns a truthy value (the daemon works asynchronously). */
export { until } from './wait.js';

export function auditEntries(
  log: string,
): { type: string; run: string; trigger?: string; address?: string; [k: string]: unknown }[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}
