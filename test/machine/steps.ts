/**
 * The steps every machine test takes with its example, as an operator following docs/examples.md does:
 * copy the shipped document to /etc/opd/state.yaml, put the host's values in /etc/opd/vars.yaml
 * and the secrets in /etc/opd/secrets, `opd apply`, apply again, enable opd-boot.service, reboot.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { expect } from 'vitest';
import { builtImage, EXAMPLES, Machine, notShipped, runsOf, sha256, Timings, type Run } from './harness.js';

export const STATE = '/etc/opd/state.yaml';
export const VARS = '/etc/opd/vars.yaml';

export interface Setup {
  /** the document's parameters, written to the machine's vars file */
  vars?: Record<string, string | number>;
  /** secret files (from_file), written with mode 0600 */
  secrets?: Record<string, string>;
}

/** A fresh machine for an example, with its vars file and secrets, booted. */
export async function machineFor(name: string, example: string, s: Setup, t: Timings): Promise<Machine> {
  const m = new Machine(name, builtImage());
  await t.time('create', () => m.create());
  copyFileSync(join(EXAMPLES, example), m.path(STATE));
  if (s.vars) m.writeFile(VARS, stringify(s.vars), 0o600);
  for (const [f, v] of Object.entries(s.secrets ?? {})) m.writeFile(f, `${v}\n`, 0o600);
  const state = await t.time('boot', () => m.boot());
  expect(state, `the freshly booted machine runs with nothing failed${await failedUnits(m)}`).toBe('running');
  return m;
}

/** The units that failed in the machine, with their last journal lines ('' when none did). */
export async function failedUnits(m: Machine): Promise<string> {
  const units = (await m.exec(['systemctl', 'list-units', '--failed', '--plain', '--no-legend', '--no-pager'])).stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter(Boolean);
  let out = '';
  for (const u of units)
    out += `\n--- ${u} failed:\n${(await m.exec(['journalctl', '-b', '-u', u, '-n', '20', '--no-pager', '-o', 'cat'])).stdout}`;
  return out;
}

/** `opd apply /etc/opd/state.yaml` (no flags: parameters from the vars file only). */
export function apply(m: Machine, t: Timings, what = 'apply'): Promise<Run> {
  return t.time(what, () => m.opd(['apply', STATE]));
}

export function expectOk(r: Run): void {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).not.toMatch(/^FAILED/m);
}

export function expectNoChanges(r: Run): void {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain('no changes: the host matches the document');
}

/**
 * Every run of /etc/opd/state.yaml in the machine's audit trail applied the shipped bytes. A run
 * blocked by its preconditions (an example that needs KVM on a host without it) applies nothing
 * and records nothing: then there is no run, and the document it read is the shipped file.
 */
export function expectShipped(m: Machine, example: string, blocked = false): void {
  if (blocked) {
    expect(runsOf(m.audit(), STATE), 'a blocked run applies and records nothing').toEqual([]);
    expect(sha256(readFileSync(m.path(STATE)))).toBe(sha256(readFileSync(join(EXAMPLES, example))));
    return;
  }
  expect(notShipped(m.audit(), STATE, example)).toEqual([]);
}

/** The machine's own view of itself (`opd facts -o json` inside). */
export async function factsOf(m: Machine): Promise<Record<string, string | number | boolean>> {
  const r = await m.opd(['facts', '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, string | number | boolean>;
}

/** Enable the shipped opd-boot.service (as `systemctl enable opd-boot` after the first apply). */
export async function enableBoot(m: Machine): Promise<void> {
  const r = await m.exec(['systemctl', 'enable', 'opd-boot.service']);
  expect(r.code, r.stderr).toBe(0);
}

/**
 * After a reboot: opd-boot ran the document (parameters from the vars file), succeeded, and was
 * done before network.target; its run is in the audit trail with the shipped document's hash.
 */
export async function expectBootRun(m: Machine, example: string): Promise<void> {
  const boot = await m.unit('opd-boot.service', [
    'Result',
    'ExecMainStatus',
    'ActiveState',
    'ActiveEnterTimestampMonotonic',
    'FragmentPath',
  ]);
  const net = await m.unit('network.target', ['ActiveState', 'ActiveEnterTimestampMonotonic']);
  const journal = (await m.exec(['journalctl', '-b', '-u', 'opd-boot.service', '--no-pager', '-o', 'cat'])).stdout;
  expect(boot.Result, journal).toBe('success');
  expect(boot.ExecMainStatus, journal).toBe('0');
  expect(boot.ActiveState).toBe('active');
  expect(boot.FragmentPath).toBe('/lib/systemd/system/opd-boot.service');
  expect(net.ActiveState).toBe('active');
  expect(Number(boot.ActiveEnterTimestampMonotonic)).toBeGreaterThan(0);
  expect(Number(boot.ActiveEnterTimestampMonotonic), 'opd-boot finished before network.target').toBeLessThanOrEqual(
    Number(net.ActiveEnterTimestampMonotonic),
  );
  expectShipped(m, example);
}

/** `opd diff` of the document: nothing to do. */
export async function expectNoDiff(m: Machine): Promise<void> {
  const d = await m.opd(['diff', STATE]);
  expect(d.code, d.stdout + d.stderr).toBe(0);
  expect(d.stdout).toContain('no changes: the host matches the document');
}
