/**
 * examples/quantix-kvm-node.yaml exactly as shipped, on a booted Debian 12 machine
 * (test/machine/harness.ts). The guide's `$USER` is a login that exists before (the test creates
 * it, as the operator's own account); the document gets its name from the machine's vars file.
 * The guide's "Minimum Resources" are a recommendation of the document (checks `recommend:`): on
 * a machine smaller than that, opd warns and goes on. libvirtd runs through its socket. The
 * guide's `ufw allow` rules are opd's; ufw itself is the operator's switch (Debian installs it
 * inactive): once it is on, the opened ports answer another host and the others are dropped, and
 * so after a reboot. The guide's post-install verification (kvm-ok, virsh list, protoc --version)
 * and its Rust 1.75+ are the document's command checks: run after the packages, held at every diff.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, NET, startedByOpd, Timings } from './harness.js';
import {
  STATE,
  apply,
  enableBoot,
  expectBootRun,
  expectNoChanges,
  expectNoDiff,
  expectOk,
  expectShipped,
  factsOf,
  failedUnits,
  machineFor,
} from './steps.js';

const EXAMPLE = 'quantix-kvm-node.yaml';
const t = new Timings('quantix-kvm-node');
const OPERATOR = 'quantix';
const PORTS = [9090, 5901, 9091];
let m: Machine;
let kvm = false;
let facts: Record<string, string | number | boolean>;
let first = '';

async function expectUfwAnswersAndDrops(): Promise<void> {
  for (const p of PORTS) await m.listen(p);
  expect(await m.reach(NET.address, 9090), 'ufw allow 9090/tcp').toBe('ok');
  expect(await m.reach(NET.address, 5901), 'ufw allow 5900:5999/tcp').toBe('ok');
  expect(await m.reach(NET.address, 9091), 'a port the guide does not open is dropped').toBe('timeout');
  for (const p of PORTS) await m.exec(['systemctl', 'stop', `opd-test-listen-${p}.service`]);
}

describe(`examples/${EXAMPLE} on a booted Debian 12 machine`, () => {
  beforeAll(async () => {
    m = await machineFor('quantix', EXAMPLE, { vars: { operator: OPERATOR } }, t);
    facts = await factsOf(m);
    kvm = facts.kvm_device === true;
    const u = await m.exec(['useradd', '--create-home', '--shell', '/bin/bash', OPERATOR]);
    expect(u.code, u.stderr).toBe(0);
  });
  afterAll(async () => {
    await m?.destroy();
  });

  it('applies the shipped document with one opd apply (exit 0; without /dev/kvm its hardware check blocks it), and a second apply has no changes', async () => {
    const a = await apply(m, t);
    if (!kvm) {
      expect(a.code, a.stdout + a.stderr).toBe(1);
      expect(a.stdout).toMatch(/^blocked checks\/require\/quantix-node: .*kvm_device/m);
      expect(a.stdout).toContain('nothing was applied');
      return;
    }
    expectOk(a);
    first = a.stdout;
    expectNoChanges(await apply(m, t, 'second apply'));
  });

  it("warns that the machine is below the guide's recommended resources where it is, and goes on", async () => {
    const d = await m.opd(['diff', STATE]);
    const short = (facts.cpus as number) < 4 || (facts.memory_mb as number) < 8192;
    if (short) expect(d.stderr).toMatch(/^opd: warning: checks\/recommend\/quantix-resources: not as recommended: /m);
    else expect(d.stderr).not.toContain('checks/recommend');
    if ((facts.cpus as number) < 4) expect(d.stderr).toContain(`min_cpus: the host has ${facts.cpus} CPUs, needs 4`);
  });

  it('applied exactly the shipped file (the audit trail records its sha256), with the operator from the vars file', () => {
    expectShipped(m, EXAMPLE, !kvm);
  });

  it("installed the guide's packages, put the operator in libvirt and kvm, and runs libvirtd through its socket (started by opd)", async () => {
    if (!kvm) return expect(await m.systemctl(['is-active', 'libvirtd.socket'])).not.toBe('active');
    const q = await m.exec([
      'dpkg-query',
      '-W',
      '-f=${Package} ${Status}\\n',
      'qemu-system-x86',
      'virtinst',
      'protobuf-compiler',
      'cpu-checker',
      'ufw',
    ]);
    for (const l of q.stdout.trim().split('\n')) expect(l).toMatch(/ install ok installed$/);
    const groups = (await m.exec(['id', '-nG', OPERATOR])).stdout.trim().split(/\s+/);
    expect(groups).toEqual(expect.arrayContaining(['libvirt', 'kvm']));
    expect(await m.systemctl(['is-active', 'libvirtd.socket'])).toBe('active');
    expect(startedByOpd(m.audit(), 'libvirtd.socket')).toBe(true);
    expect(await m.systemctl(['is-enabled', 'libvirtd.service'])).toBe('enabled');
    expect((await m.unit('libvirtd.service', ['FragmentPath'])).FragmentPath).toBe(
      '/lib/systemd/system/libvirtd.service',
    );
    // the operator's virsh reaches libvirtd (socket activation); KVM guests where /dev/kvm is passed in
    const caps = await m.exec(['virsh', '-c', 'qemu:///system', 'capabilities']);
    expect(caps.code, caps.stderr).toBe(0);
    expect(caps.stdout).toContain(`<domain type='qemu'`);
    if (m.kvm) expect(caps.stdout).toContain(`<domain type='kvm'`);
  });

  it("passes the guide's post-install verification (kvm-ok, virsh list, protoc --version) and has Rust 1.75+ with Cargo; opd diff catches a check that stops holding", async () => {
    if (!kvm) return;
    // the first apply ran each check after the packages (they did not hold before), and they held
    for (const c of ['virsh-list', 'protoc-version', 'rust-1.75', 'cargo-version'])
      expect(first, c).toContain(`checks/commands/${c}`);
    if (facts.cpu_virt_flag !== 'none') {
      expect(first).toContain('checks/commands/kvm-ok');
      expect((await m.exec(['kvm-ok'])).stdout).toContain('KVM acceleration can be used');
    } else {
      // a CPU that hides vmx/svm (a nested VM with /dev/kvm): kvm-ok would say no, the document leaves it out
      expect(first).not.toContain('checks/commands/kvm-ok');
      const d = await m.opd(['diff', STATE]);
      expect(d.stderr).toMatch(/^opd: not on this host: .*checks\/commands\/kvm-ok: cpu_virt_flag is "none"/m);
    }
    const v = await m.exec(['virsh', '--connect', 'qemu:///system', 'list', '--all']);
    expect(v.code, v.stderr).toBe(0);
    expect((await m.exec(['protoc', '--version'])).stdout).toMatch(/^libprotoc \d/);
    const rustc = (await m.exec(['rustc', '--version'])).stdout;
    const [, minor] = /^rustc 1\.(\d+)\./.exec(rustc) ?? [];
    expect(Number(minor), rustc).toBeGreaterThanOrEqual(75);
    const cargo = await m.exec(['cargo', '--version']);
    expect(cargo.code, cargo.stderr).toBe(0);
    // a host that stops passing a check (protoc gone from PATH) is a change opd diff names, and back
    expect((await m.exec(['mv', '/usr/bin/protoc', '/usr/bin/protoc.away'])).code).toBe(0);
    const d = await m.opd(['diff', STATE]);
    expect((await m.exec(['mv', '/usr/bin/protoc.away', '/usr/bin/protoc'])).code).toBe(0);
    expect(d.code, d.stderr).toBe(2);
    expect(d.stdout).toMatch(
      /^~ checks\/commands\/protoc-version: check protoc --version .*\(now: protoc is not installed\)$/m,
    );
    await expectNoDiff(m);
  });

  it("has the guide's ufw rules; with ufw on, 9090 and 5900-5999 answer another host and other ports are dropped", async () => {
    if (!kvm) return;
    const st = await m.exec(['ufw', 'status']);
    expect(st.stdout).toMatch(/^Status: inactive/m); // Debian installs ufw off: the operator turns it on
    const on = await m.exec(['ufw', '--force', 'enable']);
    expect(on.code, on.stderr).toBe(0);
    const st2 = (await m.exec(['ufw', 'status'])).stdout;
    expect(st2).toMatch(/9090\/tcp\s+ALLOW\s+Anywhere\s+# opd:quantix-grpc/);
    expect(st2).toMatch(/5900:5999\/tcp\s+ALLOW\s+Anywhere\s+# opd:quantix-vnc/);
    await expectUfwAnswersAndDrops();
    expectNoChanges(await apply(m, t, 'apply with ufw on'));
  });

  it('comes back after a reboot: ufw answers and drops the same, and opd diff finds nothing to do', async () => {
    if (!kvm) return;
    await enableBoot(m);
    const state = await t.time('reboot', () => m.reboot());
    expect(state, `the rebooted machine runs with nothing failed${await failedUnits(m)}`).toBe('running');
    await expectBootRun(m, EXAMPLE);
    expect(await m.systemctl(['is-active', 'libvirtd.socket'])).toBe('active');
    await expectUfwAnswersAndDrops();
    await expectNoDiff(m);
  });

  it('is undone by the absent document', async () => {
    if (!kvm) return;
    const a = await t.time('absent', () => m.opd(['apply', '/opt/opd/examples/quantix-kvm-node-absent.yaml']));
    expectOk(a);
    const groups = (await m.exec(['id', '-nG', OPERATOR])).stdout.trim().split(/\s+/);
    expect(groups).not.toContain('libvirt');
    expect((await m.exec(['ufw', 'status'])).stdout).not.toContain('opd:quantix');
    expect((await m.exec(['getent', 'passwd', OPERATOR])).code, 'the login was never opd’s').toBe(0);
  });
});
