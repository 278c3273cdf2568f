/**
 * kmod: persistence (/etc/modules-load.d) and options (/etc/modprobe.d) written for real, for
 * a module name of the test's own, under /etc and under a sandbox root; loading it fails with a
 * clear error: a kernel without loadable modules says so, one with them has no such module.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { opd, doc as mkdoc, tmp, uniq } from '../helpers/opd.js';
import { modulesLoadable } from '../helpers/host.js';

const m = `opdt${uniq(6)}`;
const work = tmp('opd-kmod-');
/** Documents go into the test's own directory (removed afterwards), one file per document. */
let docs = 0;
const doc = (text: string) => mkdoc(text, work, `state-${++docs}.yaml`);
const env = { OPD_AUDIT_LOG: join(work, 'audit.jsonl') };
const loadConf = `/etc/modules-load.d/opd-${m}.conf`;
const optConf = `/etc/modprobe.d/opd-${m}.conf`;

afterAll(() => {
  rmSync(loadConf, { force: true });
  rmSync(optConf, { force: true });
  rmSync(work, { recursive: true, force: true });
});

const d = (spec: string) => doc(`version: 1\nplugins:\n  kmod:\n    modules:\n      ${m}: ${spec}\n`);
const files = () =>
  [loadConf, optConf].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '<none>')).join('\n---\n');

describe('kmod', () => {
  it('writes the persistence and options files under /etc', async () => {
    const r = await opd(['apply', d(`{ persist: true, options: "nested=1" }`)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(loadConf, 'utf8')).toMatch(new RegExp(`^${m}$`, 'm'));
    expect(readFileSync(optConf, 'utf8')).toContain(`options ${m} nested=1\n`);
  });

  it('reports no changes on a second apply and exits 0 from diff', async () => {
    expect((await opd(['apply', d(`{ persist: true, options: "nested=1" }`)], { env })).stdout).toContain('no changes');
    expect((await opd(['diff', d(`{ persist: true, options: "nested=1" }`)], { env })).code).toBe(0);
  });

  it('leaves the files untouched when diffing pending changes', async () => {
    const before = files();
    const r = await opd(['diff', d(`{ persist: false, options: "nested=0 foo=bar" }`)], { env });
    expect(r.code).toBe(2);
    expect(files()).toBe(before);
  });

  it('changes the options', async () => {
    const r = await opd(['apply', d(`{ persist: true, options: "nested=0 foo=bar" }`)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('options "nested=1" → "nested=0 foo=bar"');
    expect(readFileSync(optConf, 'utf8')).toContain(`options ${m} nested=0 foo=bar\n`);
  });

  it('fails loading a module this kernel cannot load with a clear error that says why, after writing the files', async () => {
    rmSync(loadConf, { force: true });
    const r = await opd(['apply', d(`{ loaded: true, persist: true, options: "nested=0 foo=bar" }`)], { env });
    expect(r.code).toBe(1);
    const out = r.stdout + r.stderr;
    if (modulesLoadable()) {
      // a kernel with loadable modules: the test's own module name exists nowhere, modprobe says so
      expect(out).toMatch(new RegExp(`modprobe -- ${m} failed: .*${m}`));
    } else {
      expect(out).toContain('this kernel cannot load modules here');
      expect(out).toContain('the persistence files were written; load it after a reboot or on a host with modules');
    }
    expect(existsSync(loadConf)).toBe(true);
  });

  it('counts a module that is present in /sys/module as loaded', async () => {
    const present = existsSync('/sys/module/kvm') ? 'kvm' : 'kernel';
    const r = await opd(
      ['diff', doc(`version: 1\nplugins:\n  kmod:\n    modules:\n      ${present}: { loaded: true }\n`)],
      { env },
    );
    expect(r.code, r.stdout).toBe(0);
  });

  it('removes its files when the module is marked absent', async () => {
    const r = await opd(['apply', d(`{ state: absent }`)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(existsSync(loadConf)).toBe(false);
    expect(existsSync(optConf)).toBe(false);
    expect((await opd(['apply', d(`{ state: absent }`)], { env })).stdout).toContain('no changes');
  });

  it('writes under a sandbox root with --root', async () => {
    const root = join(work, 'root');
    mkdirSync(root, { recursive: true });
    const r = await opd(['apply', '--root', root, d(`{ persist: true, options: "nested=1" }`)], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(root, loadConf), 'utf8')).toContain(`${m}\n`);
    expect(existsSync(loadConf)).toBe(false);
    expect(
      (await opd(['apply', '--root', root, d(`{ persist: true, options: "nested=1" }`)], { env })).stdout,
    ).toContain('no changes');
  });

  it('rejects hostile module names and options (exit 65)', async () => {
    for (const bad of [
      `"${m};reboot": { persist: true }`,
      `"../${m}": { persist: true }`,
      `${m}: { options: "a=1; rm -rf /" }`,
      `${m}: { options: "a=1\\ninstall ${m} /bin/sh" }`,
    ]) {
      const r = await opd(['apply', doc(`version: 1\nplugins:\n  kmod:\n    modules:\n      ${bad}\n`)], { env });
      expect(r.code, bad + r.stdout + r.stderr).toBe(65);
    }
    expect(existsSync(loadConf)).toBe(false);
  });

  it('keeps an intact audit chain', async () => {
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
