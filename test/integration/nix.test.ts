/**
 * The NixOS module and package, checked with Debian's nix-bin (no nixpkgs, no network): every
 * .nix file parses, and nix/test/eval.nix evaluates the module through nix/test/lib.nix (a model
 * of nixpkgs' lib.evalModules: laziness, unknown options are errors, renamed options, deep merge
 * of freeform submodules, enums) in several scenarios, seed 002's op-dbus block among them.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execa } from 'execa';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, opd, tmp } from '../helpers/opd.js';
import { loadDocument } from '../../src/core/document.js';
import { resolveParams } from '../../src/core/params.js';

const NIX_ENV = { NIX_CONFIG: 'build-users-group =' };

function nixFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? nixFiles(p) : n.endsWith('.nix') ? [p] : [];
  });
}

interface Validation {
  buildCommand: string;
  file: string;
}

interface Scenario {
  warnings: string[];
  assertions: string[];
  enabled: boolean;
  service: {
    after: string[];
    requires: string[];
    wantedBy: string[];
    path: string[];
    reloadTriggers: string[];
    serviceConfig: Record<string, unknown>;
  } | null;
  stateJson: string | null;
  statePath: string | null;
  validate: (Validation & { tools: string[] }) | null;
  stateFileValidate: Validation | null;
  dbusPackages: string[];
  bootService: {
    after: string[];
    before: string[];
    wantedBy: string[];
    path: string[];
    serviceConfig: Record<string, unknown>;
  } | null;
}

const EVAL = ['--eval', '--strict', '--json', '--readonly-mode'];

async function scenario(name: string): Promise<{ code: number; value?: Scenario; stderr: string }> {
  const e = await execa('nix-instantiate', [...EVAL, join(ROOT, 'nix/test/eval.nix'), '-A', name], {
    env: NIX_ENV,
    reject: false,
  });
  return { code: e.exitCode ?? -1, value: e.exitCode === 0 ? JSON.parse(e.stdout) : undefined, stderr: e.stderr };
}

/**
 * Run a validation derivation's build command as the Nix builder would: `$file` the document,
 * `$out` the result, `opd` on PATH (this checkout's bin/opd.js).
 */
async function runValidation(v: Validation, text?: string): Promise<{ code: number; output: string; out: string }> {
  const dir = tmp('opd-nixbuild-');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'opd'), `#!/bin/sh\nexec node ${JSON.stringify(join(ROOT, 'bin/opd.js'))} "$@"\n`);
  chmodSync(join(bin, 'opd'), 0o755);
  let file = v.file;
  if (text !== undefined) {
    // the rendered document at a path named like its store path (opd reads *.json as JSON)
    file = join(dir, v.file.replace(/^.*\//, ''));
    writeFileSync(file, text);
  }
  const out = join(dir, 'out');
  const r = await execa('bash', ['-euc', v.buildCommand], {
    env: { PATH: `${bin}:${process.env.PATH}`, file, out },
    reject: false,
    all: true,
  });
  let result = '';
  try {
    result = readFileSync(out, 'utf8');
  } catch {
    /* the build failed before writing $out */
  }
  return { code: r.exitCode ?? -1, output: r.all ?? '', out: result };
}

/** The [Service] section of a shipped unit, as key → value (a key given on several lines: joined by spaces). */
function shippedService(unit = 'opd.service'): Record<string, string> {
  const text = readFileSync(join(ROOT, 'packaging/systemd', unit), 'utf8');
  const section = text.split(/^\[Service\]$/m)[1].split(/^\[/m)[0];
  const out: Record<string, string> = {};
  for (const l of section.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(l.trim());
    if (m) out[m[1]] = m[1] in out ? `${out[m[1]]} ${m[2]}` : m[2];
  }
  return out;
}

/** The warning for an inline document (it goes through the world-readable Nix store). */
const INLINE_WARNING = expect.stringMatching(
  /^services\.opd\.state is rendered into the Nix store .* every local user can read: keep secrets .* services\.opd\.stateFile = "\/etc\/opd\/state\.yaml" \(a string: read on the host, never copied to the store\).*from_file/,
);

function render(v: unknown): string {
  if (Array.isArray(v)) return v.join(' ');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

describe('NixOS module (nix-instantiate, nixpkgs module-system semantics)', () => {
  const r: Record<string, Scenario> = {};
  let pkg: {
    pname: string;
    version: string;
    postInstall: string;
    mainProgram: string;
    npmDeps: { npmRoot: string; lockfileVersion: number };
    npmConfigHook: string;
    hasNpmDepsHash: boolean;
  };

  beforeAll(async () => {
    for (const n of [
      'state',
      'seed002',
      'deepMerge',
      'lazy',
      'example',
      'stateFilePath',
      'stateFileString',
      'noVswitch',
      'both',
      'nothing',
      'agentWithOvs',
      'disabled',
      'fleet',
      'fleetNoEtcd',
      'fleetCertNoKey',
    ]) {
      const s = await scenario(n);
      if (s.code !== 0)
        throw new Error(`nix-instantiate -A ${n} failed (install nix-bin: scripts/install-deps.sh): ${s.stderr}`);
      r[n] = s.value!;
    }
    const p = await execa('nix-instantiate', [...EVAL, join(ROOT, 'nix/test/eval.nix'), '-A', 'package'], {
      env: NIX_ENV,
    });
    pkg = JSON.parse(p.stdout);
  }, 300_000);

  it('parses every .nix file', async () => {
    const files = nixFiles(join(ROOT, 'nix')).concat(nixFiles(join(ROOT, 'examples/nixos')));
    expect(files.length).toBeGreaterThanOrEqual(7);
    for (const f of files) {
      const p = await execa('nix-instantiate', ['--parse', f], { env: NIX_ENV, reject: false });
      expect(p.exitCode, `${f}: ${p.stderr}`).toBe(0);
    }
  });

  it('renders services.opd.state into /etc/opd/state.json through a build-time opd validate', async () => {
    const s = r.state;
    expect(s.assertions).toEqual([]);
    expect(s.warnings).toEqual([INLINE_WARNING]);
    const doc = JSON.parse(s.stateJson!);
    expect(doc).toEqual({
      version: 1,
      plugins: { ovs: { bridges: { ovsbr0: { ports: { vi100: { type: 'internal', tag: 10 } } } } } },
    });
    // /etc/opd/state.json is the validation derivation's output, built with opd on its PATH
    expect(s.statePath).toMatch(/-opd-state\.json$/);
    expect(s.validate!.tools).toEqual(['/nix/store/00000000000000000000000000000000-opd-0.1.0']);
    const built = await runValidation(s.validate!, s.stateJson!);
    expect(built.code, built.output).toBe(0);
    expect(built.output).toMatch(/^ok: /m);
    expect(built.out).toBe(s.stateJson);
  });

  it("fails the build when the rendered state is invalid, with opd validate's messages", async () => {
    const bad = JSON.stringify({ version: 1, plugins: { ovs: { bridges: { ovsbr0: { portz: {} } } } } });
    const built = await runValidation(r.state.validate!, bad);
    expect(built.code).toBe(65);
    expect(built.output).toMatch(/: plugins\.ovs\.bridges\.ovsbr0\.portz: unknown key "portz"/);
    expect(built.out).toBe('');
  });

  it("escapes ExecStart with systemd's rules (each argument quoted, % and $ doubled), not a shell's", () => {
    const svc = r.state.service!;
    expect(svc.wantedBy).toEqual(['multi-user.target']);
    expect(svc.serviceConfig.Type).toBe('notify');
    expect(svc.serviceConfig.ExecStart).toBe(
      '/nix/store/00000000000000000000000000000000-opd-0.1.0/bin/opd "daemon" "--state" "/etc/opd/state.json" "--resync" "120" "--audit-log" "/var/lib/opd/audit.jsonl" "--allow-destroy" "--backoff-cap" "60" "--log-level" "debug 100%%" "$$HOME"',
    );
    expect(svc.reloadTriggers).toEqual([r.state.statePath]);
    expect(svc.path).toContain('/nix/store/00000000000000000000000000000000-openvswitch');
    expect(r.state.dbusPackages).toEqual(['/nix/store/00000000000000000000000000000000-opd-0.1.0']);
  });

  it('orders after ovs-vswitchd.service and requires it when the state manages Open vSwitch, not otherwise', () => {
    expect(r.state.service!.after).toEqual([
      'network-online.target',
      'dbus.service',
      'ovsdb.service',
      'ovs-vswitchd.service',
    ]);
    expect(r.state.service!.requires).toEqual(['ovs-vswitchd.service']);
    expect(r.stateFileString.service!.after).not.toContain('ovs-vswitchd.service');
    expect(r.stateFileString.service!.requires).toEqual([]);
  });

  it('generates opd-boot as packaging/systemd/opd-boot.service: the network-level plugins before network-online.target', () => {
    const text = readFileSync(join(ROOT, 'packaging/systemd/opd-boot.service'), 'utf8');
    const b = r.state.bootService!;
    const shippedArgs = /^ExecStart=\/usr\/bin\/opd (apply --only \S+)/m.exec(text)![1];
    // systemd's quoting: each argument in double quotes
    expect(b.serviceConfig.ExecStart).toContain(
      `/bin/opd ${shippedArgs
        .split(' ')
        .map((a) => `"${a}"`)
        .join(' ')} `,
    );
    expect(b.serviceConfig.ExecStart).toMatch(/ "\/etc\/opd\/state\.json"$/);
    expect(b.serviceConfig.Type).toBe('oneshot');
    expect(b.before).toEqual(expect.arrayContaining(['network.target', 'network-online.target', 'opd.service']));
    expect(b.after).toEqual(expect.arrayContaining(['ovsdb.service', 'ovs-vswitchd.service']));
    expect(b.wantedBy).toEqual(expect.arrayContaining(['network-online.target', 'multi-user.target']));
    for (const t of ['network.target', 'network-online.target', 'opd.service'])
      expect(text).toMatch(new RegExp(`^Before=.*\\b${t.replace('.', '\\.')}\\b`, 'm'));
  });

  it('generates the same unit as packaging/systemd/opd.service, hardening included', () => {
    const shipped = shippedService();
    const cfg = r.state.service!.serviceConfig;
    expect(cfg.ProtectSystem).toBe('strict');
    expect(cfg.NoNewPrivileges).toBe(true);
    expect(cfg.NotifyAccess).toBe('main');
    expect(cfg.ReadWritePaths).toEqual(['/var/lib/opd', '/etc', '/run', '-/home', '-/var/lib/lxc', '-/var/cache/lxc']);
    const skip = new Set(['ExecStart', 'ExecReload', 'Environment']);
    for (const [k, v] of Object.entries(shipped)) {
      if (skip.has(k)) continue;
      expect(render(cfg[k]), k).toBe(v);
    }
    expect(Object.keys(cfg).filter((k) => !skip.has(k) && !(k in shipped))).toEqual([]);
  });

  it('generates the same hardening as packaging/systemd/opd-boot.service', () => {
    const shipped = shippedService('opd-boot.service');
    const cfg = r.state.bootService!.serviceConfig;
    const skip = new Set(['ExecStart', 'Environment']);
    for (const [k, v] of Object.entries(shipped)) {
      if (skip.has(k)) continue;
      expect(render(cfg[k]), k).toBe(v);
    }
    expect(Object.keys(cfg).filter((k) => !skip.has(k) && !(k in shipped))).toEqual([]);
  });

  it('warns about an inline document (it goes through the world-readable store), not about a stateFile string or fleet mode', () => {
    expect(r.deepMerge.warnings).toContainEqual(INLINE_WARNING);
    expect(r.stateFileString.warnings).toEqual([]);
    expect(r.fleet.warnings).toEqual([]);
  });

  it("evaluates seed 002's services.op-dbus block verbatim: renamed options warn, enableBlockchain/enableCache warn, the state validates", async () => {
    const seedBlock = readFileSync(join(ROOT, 'nix/test/seed-002-op-dbus.nix'), 'utf8');
    for (const line of [
      'services.op-dbus = {',
      'mode = "full";',
      'stateConfig = {',
      'enableBlockchain = true;',
      'enableCache = true;',
      '"openvswitch.service" = {',
      'veth = "vi102";',
    ])
      expect(seedBlock).toContain(line);
    const s = r.seed002;
    expect(s.assertions).toEqual([]);
    expect([...s.warnings].sort()).toEqual([
      expect.stringMatching(
        /^The option `services\.op-dbus\.enable' defined in `.*seed-002-op-dbus\.nix' has been renamed to `services\.opd\.enable'\.$/,
      ),
      expect.stringMatching(
        /^The option `services\.op-dbus\.enableBlockchain' .* has no effect with opd: .*audit trail/,
      ),
      expect.stringMatching(/^The option `services\.op-dbus\.enableCache' .* has no effect with opd/),
      expect.stringMatching(/^The option `services\.op-dbus\.mode' .* has been renamed to `services\.opd\.mode'\.$/),
      expect.stringMatching(
        /^The option `services\.op-dbus\.stateConfig' .* has been renamed to `services\.opd\.state'\.$/,
      ),
      INLINE_WARNING,
    ]);
    const doc = JSON.parse(s.stateJson!);
    expect(doc.version).toBe(1);
    expect(doc.plugins.net.interfaces.map((i: { name: string }) => i.name)).toEqual(['ovsbr0', 'mesh']);
    expect(doc.plugins.lxc.containers.map((c: { name: string }) => c.name)).toEqual(['gateway', 'warp', 'xray-client']);
    const built = await runValidation(s.validate!, s.stateJson!);
    expect(built.code, built.output).toBe(0);
    const f = join(tmp('opd-nix-'), 'state.json');
    writeFileSync(f, s.stateJson!);
    const v = await opd(['validate', f]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/ok: .*\(8 resources in lxc, net, ovs, systemd\)/);
    expect(s.service!.requires).toEqual(['ovs-vswitchd.service']);
    expect(s.service!.path).toContain('/nix/store/00000000000000000000000000000000-lxc');
  });

  it('merges state from several modules deeply (services.opd.state, services.op-dbus.stateConfig, services.opd.stateConfig)', () => {
    const doc = JSON.parse(r.deepMerge.stateJson!);
    expect(doc.plugins.ovs.bridges).toEqual({ a: { datapath_type: 'netdev', ports: { p1: {} } }, b: { ports: {} } });
    expect(doc.plugins.net.interfaces.map((i: { name: string }) => i.name).sort()).toEqual(['a', 'b']);
    expect(doc.plugins.systemd.units).toEqual({ 'x.service': { enabled: true } });
  });

  it('is lazy: a disabled service evaluates nothing of its state', () => {
    expect(r.lazy.enabled).toBe(false);
    expect(r.lazy.service).toBeNull();
    expect(r.disabled.service).toBeNull();
  });

  for (const [name, re] of [
    [
      'badMode',
      /A definition for option `services\.opd\.mode' is not of type `null or one of "full", "standalone", "agent"'[\s\S]*"proxmox"/,
    ],
    ['unknownOpdbusOption', /The option `services\.op-dbus\.enableMagic' does not exist/],
    ['unknownTopLevel', /The option `networking' does not exist/],
    ['badType', /A definition for option `services\.opd\.resync' is not of type `unsigned integer/],
    ['conflict', /The option `services\.opd\.state\.ovs\.bridges\.a\.datapath_type' has conflicting definition values/],
  ] as const) {
    it(`refuses the ${name} configuration with nixpkgs' message`, async () => {
      const s = await scenario(name);
      expect(s.code).not.toBe(0);
      expect(s.stderr).toMatch(re);
    });
  }

  it('runs the daemon in fleet mode from services.opd.fleet (endpoints, host, labels, credentials, TLS files, trusted operator keys) and names the fix without endpoints', () => {
    const f = r.fleet;
    expect(f.assertions).toEqual([]);
    expect(f.stateJson).toBeNull();
    const exec = f.service!.serviceConfig.ExecStart as string;
    expect(exec).toContain(
      '"daemon" "--etcd" "https://10.0.0.1:2379,https://10.0.0.2:2379" "--lease-ttl" "10" "--host" "kvm-07" "--label" "rack=b2" "--label" "role=kvm"',
    );
    expect(exec).toContain('"--etcd-user" "opd-host-kvm-07" "--etcd-password-file" "/run/keys/opd-etcd"');
    expect(exec).toContain(
      '"--etcd-ca" "/etc/opd/etcd-ca.pem" "--etcd-cert" "/etc/opd/kvm-07.pem" "--etcd-key" "/run/keys/kvm-07.key" "--fleet-keys" "/etc/opd/operator-keys.pub"',
    );
    expect(r.fleetCertNoKey.assertions).toEqual([
      expect.stringContaining('set services.opd.fleet.certFile and services.opd.fleet.keyFile together'),
    ]);
    expect(exec).not.toContain('--state');
    expect(r.fleetNoEtcd.assertions).toEqual([expect.stringContaining('services.opd.fleet.etcd = [')]);
  });

  it('checks mode against the state and names the fixes in assertions', () => {
    expect(r.agentWithOvs.assertions).toEqual([expect.stringContaining('mode = "agent" manages no Open vSwitch')]);
    expect(r.noVswitch.assertions).toEqual([expect.stringContaining('set virtualisation.vswitch.enable = true;')]);
    expect(r.both.assertions).toEqual([expect.stringContaining('not both')]);
    expect(r.nothing.assertions).toEqual([expect.stringContaining('nothing to manage')]);
  });

  it('renders examples/nixos/opdbus-full-mode.nix into the same document as examples/opdbus-full-mode.yaml', async () => {
    const s = r.example;
    expect(s.assertions).toEqual([]);
    expect(s.warnings).toEqual([INLINE_WARNING]);
    // the YAML's parameters, resolved with the values the twin writes as Nix values
    const resolved = resolveParams(await loadDocument(join(ROOT, 'examples/opdbus-full-mode.yaml')), {
      vars: ['address=192.168.1.10', 'gateway=192.168.1.1'],
      env: {},
    });
    const { description: _d, params: _p, ...expected } = resolved.raw as Record<string, unknown>;
    expect(JSON.parse(s.stateJson!)).toEqual(expected);
    const built = await runValidation(s.validate!, s.stateJson!);
    expect(built.code, built.output).toBe(0);
  });

  it('copies a stateFile given as a path to the store and validates it at build time; a string stays a host path', async () => {
    const s = r.stateFilePath;
    expect(s.stateJson).toBeNull();
    expect(s.service!.serviceConfig.ExecStart).toContain(
      '"--state" "/nix/store/00000000000000000000000000000000-opd-state-demo.yaml"',
    );
    const built = await runValidation(s.stateFileValidate!);
    expect(built.code, built.output).toBe(0);
    expect(built.out).toBe(readFileSync(join(ROOT, 'examples/demo.yaml'), 'utf8'));
    expect(r.stateFileString.service!.serviceConfig.ExecStart).toContain('"--state" "/etc/opd/state.yaml"');
    expect(r.stateFileString.service!.reloadTriggers).toEqual([]);
  });

  it('packages opd with buildNpmPackage and importNpmLock (no npmDepsHash to keep), installing the unit and the bus policy', () => {
    expect(pkg.pname).toBe('opd');
    expect(pkg.version).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
    expect(pkg.mainProgram).toBe('opd');
    expect(pkg.hasNpmDepsHash).toBe(false);
    expect(pkg.npmDeps.npmRoot.replace(/\/$/, '')).toBe(ROOT.replace(/\/$/, ''));
    expect(pkg.npmDeps.lockfileVersion).toBe(3);
    expect(pkg.npmConfigHook).toMatch(/npm-config-hook$/);
    expect(pkg.postInstall).toContain('$out/lib/systemd/system/opd.service');
    expect(pkg.postInstall).toContain('$out/share/dbus-1/system.d/org.opd.Reconciler1.conf');
    expect(pkg.postInstall).toContain('$out/share/polkit-1/actions/org.opd.reconciler1.policy');
  });
});
