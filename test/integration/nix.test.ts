/**
 * The NixOS module and package, checked with Debian's nix-bin (no nixpkgs, no network):
 * every .nix file parses, and nix/test/eval.nix evaluates the module in several scenarios.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execa } from 'execa';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, opd, tmp } from '../helpers/opd.js';

const NIX_ENV = { NIX_CONFIG: 'build-users-group =' };

function nixFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? nixFiles(p) : n.endsWith('.nix') ? [p] : [];
  });
}

interface Scenario {
  typeErrors?: string[];
  assertions: string[];
  enabled: boolean;
  service: { after: string[]; wantedBy: string[]; path: string[]; reloadTriggers: string[]; serviceConfig: Record<string, unknown> } | null;
  stateJson: string | null;
  statePath: string | null;
  dbusPackages: string[];
  bootService: { after: string[]; before: string[]; wantedBy: string[]; serviceConfig: Record<string, unknown> } | null;
}

/** The [Service] section of the shipped unit, as key → value(s). */
function shippedService(): Record<string, string> {
  const text = readFileSync(join(ROOT, 'packaging/systemd/opd.service'), 'utf8');
  const section = text.split(/^\[Service\]$/m)[1].split(/^\[/m)[0];
  const out: Record<string, string> = {};
  for (const l of section.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(l.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function render(v: unknown): string {
  if (Array.isArray(v)) return v.join(' ');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

describe('NixOS module (nix-instantiate)', () => {
  let r: Record<string, Scenario> & { package: { pname: string; version: string; postInstall: string; mainProgram: string } };

  beforeAll(async () => {
    const e = await execa('nix-instantiate', ['--eval', '--strict', '--json', join(ROOT, 'nix/test/eval.nix')], { env: NIX_ENV, reject: false });
    if (e.exitCode !== 0) throw new Error(`nix-instantiate failed (install nix-bin: scripts/install-deps.sh): ${e.stderr}`);
    r = JSON.parse(e.stdout);
  });

  it('parses every .nix file', async () => {
    const files = nixFiles(join(ROOT, 'nix'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const p = await execa('nix-instantiate', ['--parse', f], { env: NIX_ENV, reject: false });
      expect(p.exitCode, `${f}: ${p.stderr}`).toBe(0);
    }
  });

  it('renders services.opd.state into /etc/opd/state.json that passes opd validate', async () => {
    const s = r.state;
    expect(s.assertions).toEqual([]);
    expect(s.statePath).toMatch(/-opd-state\.json$/);
    const doc = JSON.parse(s.stateJson!);
    expect(doc).toEqual({ version: 1, plugins: { ovs: { bridges: { ovsbr0: { ports: { vi100: { type: 'internal', tag: 10 } } } } } } });
    const f = join(tmp('opd-nix-'), 'state.json');
    writeFileSync(f, s.stateJson!);
    const v = await opd(['validate', f]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('generates a Type=notify service running opd daemon with the options as arguments', () => {
    const svc = r.state.service!;
    expect(svc.wantedBy).toEqual(['multi-user.target']);
    expect(svc.serviceConfig.Type).toBe('notify');
    expect(svc.serviceConfig.ExecStart).toBe(
      '/nix/store/00000000000000000000000000000000-opd-0.1.0/bin/opd daemon --state /etc/opd/state.json --resync 120 --audit-log /var/lib/opd/audit.jsonl --allow-destroy --backoff-cap 60',
    );
    expect(svc.reloadTriggers).toEqual([r.state.statePath]);
    expect(svc.path).toContain('/nix/store/00000000000000000000000000000000-openvswitch');
    expect(r.state.dbusPackages).toEqual(['/nix/store/00000000000000000000000000000000-opd-0.1.0']);
  });

  it('generates the same unit as packaging/systemd/opd.service, hardening included', () => {
    const shipped = shippedService();
    const cfg = r.state.service!.serviceConfig;
    expect(cfg.ProtectSystem).toBe('strict');
    expect(cfg.NoNewPrivileges).toBe(true);
    expect(cfg.ReadWritePaths).toEqual(['/var/lib/opd', '/etc', '/run', '-/var/lib/lxc', '-/var/cache/lxc']);
    const skip = new Set(['ExecStart', 'ExecReload', 'Environment']);
    for (const [k, v] of Object.entries(shipped)) {
      if (skip.has(k)) continue;
      expect(render(cfg[k]), k).toBe(v);
    }
    expect(Object.keys(cfg).filter((k) => !skip.has(k) && !(k in shipped))).toEqual([]);
  });

  it('generates opd-boot as packaging/systemd/opd-boot.service: the network-level plugins before network-online.target', () => {
    const text = readFileSync(join(ROOT, 'packaging/systemd/opd-boot.service'), 'utf8');
    const b = r.state.bootService!;
    const shippedArgs = /^ExecStart=\/usr\/bin\/opd (apply --only \S+)/m.exec(text)![1];
    expect(b.serviceConfig.ExecStart).toContain(`/bin/opd ${shippedArgs} `);
    expect(b.serviceConfig.ExecStart).toMatch(/ \/etc\/opd\/state\.json$/);
    expect(b.serviceConfig.Type).toBe('oneshot');
    expect(b.before).toEqual(expect.arrayContaining(['network.target', 'network-online.target', 'opd.service']));
    expect(b.after).toEqual(expect.arrayContaining(['ovsdb.service', 'vswitchd.service']));
    expect(b.wantedBy).toEqual(expect.arrayContaining(['network-online.target', 'multi-user.target']));
    for (const t of ['network.target', 'network-online.target', 'opd.service']) expect(text).toMatch(new RegExp(`^Before=.*\\b${t.replace('.', '\\.')}\\b`, 'm'));
  });

  it("accepts op-dbus's configuration with services.op-dbus renamed to services.opd (stateConfig, mode)", async () => {
    const s = r.opdbus;
    expect(s.assertions).toEqual([]);
    const f = join(tmp('opd-nix-'), 'state.json');
    writeFileSync(f, s.stateJson!);
    const v = await opd(['validate', f]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('names the fix when the state manages OVS but virtualisation.vswitch.enable is false', () => {
    expect(r.noVswitch.assertions).toEqual([expect.stringContaining('set virtualisation.vswitch.enable = true;')]);
  });

  it('uses stateFile instead of rendering, and refuses both or neither', () => {
    expect(r.stateFile.assertions).toEqual([]);
    expect(r.stateFile.stateJson).toBeNull();
    expect(r.stateFile.service!.serviceConfig.ExecStart).toContain('daemon --state /etc/opd/state.yaml ');
    expect(r.both.assertions).toEqual([expect.stringContaining('not both')]);
    expect(r.nothing.assertions).toEqual([expect.stringContaining('nothing to manage')]);
  });

  it('rejects an option value of the wrong type and does nothing when disabled', () => {
    expect(r.badType.typeErrors).toEqual(['services.opd.resync: not a unsigned int']);
    expect(r.disabled.enabled).toBe(false);
    expect(r.disabled.service).toBeNull();
  });

  it('runs the daemon in fleet mode from services.opd.fleet (endpoints, host, labels, credentials) and names the fix without endpoints', () => {
    const f = r.fleet;
    expect(f.assertions).toEqual([]);
    expect(f.stateJson).toBeNull();
    const exec = f.service!.serviceConfig.ExecStart;
    expect(exec).toContain('daemon --etcd https://10.0.0.1:2379,https://10.0.0.2:2379 --lease-ttl 10 --host kvm-07 --label ');
    expect(exec).toContain("--label 'rack=b2' --label 'role=kvm'");
    expect(exec).toContain('--etcd-user opd-host-kvm-07 --etcd-password-file /run/keys/opd-etcd');
    expect(exec).not.toContain('--state');
    expect(r.fleetNoEtcd.assertions).toEqual([expect.stringContaining('services.opd.fleet.etcd = [')]);
  });

  it('packages opd with buildNpmPackage, installing the unit and the bus policy', () => {
    expect(r.package.pname).toBe('opd');
    expect(r.package.version).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
    expect(r.package.mainProgram).toBe('opd');
    expect(r.package.postInstall).toContain('$out/lib/systemd/system/opd.service');
    expect(r.package.postInstall).toContain('$out/share/dbus-1/system.d/org.opd.Reconciler1.conf');
  });
});
