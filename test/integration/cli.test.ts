/** The built `opd` as a user runs it: exit codes, stdout for data, stderr for messages. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, doc, opd, tmp } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';

let ovs: OvsSandbox;
const audit = () => join(tmp(), 'audit.jsonl');
const GOOD =
  'version: 1\nplugins:\n  ovs:\n    bridges:\n      cbr0:\n        ports:\n          cp1: { type: internal, tag: 5 }\n';

beforeAll(async () => {
  ovs = await startOvs();
});
afterAll(async () => {
  await ovs?.stop();
});

describe('the opd command line', () => {
  it('ships precompiled validators, one per plugin section, that load and match the schema files', async () => {
    const { createHash } = await import('node:crypto');
    const { readdirSync } = await import('node:fs');
    const dir = join(ROOT, 'schema/');
    const h = createHash('sha256');
    for (const f of readdirSync(dir)
      .filter((x) => x.endsWith('.schema.json'))
      .sort())
      h.update(f + '\0' + readFileSync(dir + f, 'utf8') + '\0');
    const manifest = JSON.parse(readFileSync(join(ROOT, 'dist/validators/manifest.json'), 'utf8')) as {
      hash: string;
      plugins: Record<string, string>;
    };
    expect(manifest.hash).toBe(h.digest('hex'));
    const state = JSON.parse(readFileSync(join(dir, 'state.schema.json'), 'utf8')) as {
      properties: { plugins: { properties: Record<string, { $ref?: string }> } };
    };
    const sections = Object.entries(state.properties.plugins.properties)
      .filter(([, v]) => typeof v.$ref === 'string')
      .map(([k]) => k);
    expect(Object.keys(manifest.plugins).sort()).toEqual(sections.sort());
    const load = async (n: string) =>
      ((await import(join(ROOT, `dist/validators/${n}.cjs`))) as { default: (d: unknown) => boolean }).default;
    expect((await load('state'))({ version: 1, plugins: {} })).toBe(true);
    expect((await load('state'))({ version: 1, plugins: { nosuch: {} } })).toBe(false);
    expect((await load('ovs'))({ bridges: { br0: { ports: { p0: { tag: 10 } } } } })).toBe(true);
    expect((await load('ovs'))({ bridges: { br0: { bogus: 1 } } })).toBe(false);
  });

  it('prints its version on stdout with exit 0', async () => {
    const r = await opd(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(r.stderr).toBe('');
  });

  it('lists every command and the exit codes in --help', async () => {
    const r = await opd(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['validate', 'diff', 'apply', 'show', 'graph', 'audit', 'doctor']) expect(r.stdout).toContain(c);
    expect(r.stdout).toMatch(/65 invalid document/);
  });

  it('describes every flag of apply in apply --help', async () => {
    const r = await opd(['apply', '--help']);
    expect(r.code).toBe(0);
    for (const f of [
      '--dry-run',
      '--rollback',
      '--allow-destroy',
      '--audit-log',
      '--ovs-db',
      '--lock-wait',
      '--output',
    ])
      expect(r.stdout).toContain(f);
  });

  it('exits 64 on an unknown command or option, on stderr only', async () => {
    const a = await opd(['frobnicate']);
    expect(a.code).toBe(64);
    expect(a.stdout).toBe('');
    expect(a.stderr).toMatch(/unknown command/);
    const b = await opd(['diff', '--bogus', 'x.yaml']);
    expect(b.code).toBe(64);
    expect(b.stderr).toMatch(/unknown option '--bogus'/);
  });

  it('exits 64 naming the file when the document does not exist', async () => {
    const r = await opd(['validate', '/nonexistent/state.yaml']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/\/nonexistent\/state.yaml: no such file/);
  });

  it('validates a good document with exit 0 and a bad one with exit 65 and located errors on stderr', async () => {
    const ok = await opd(['validate', doc(GOOD)]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: .*state.yaml \(1 resource in ovs\)/);
    const bad = await opd(['validate', doc(GOOD.replace('tag: 5', 'tag: 5000').replace('cbr0:', '"cbr0;rm -rf /":'))]);
    expect(bad.code).toBe(65);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/state.yaml:5:7: plugins\.ovs\.bridges\["cbr0;rm -rf \/"\]: invalid name/);
    expect(bad.stderr).toMatch(/state.yaml:7:\d+: .*tag: must be <= 4095/);
    expect(bad.stderr).not.toMatch(/\s+at .*\.js:\d+/);
  });

  it('reads a document from stdin with -', async () => {
    const r = await opd(['validate', '-'], { input: GOOD });
    expect(r.code).toBe(0);
  });

  it('exits 2 from diff with changes pending and 0 once applied, touching nothing on invalid input', async () => {
    const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit() };
    const before = await ovs.dump();
    const bad = await opd(['apply', doc(GOOD + 'oops: 1\n')], { env });
    expect(bad.code).toBe(65);
    expect(await ovs.dump()).toBe(before);
    const d = await opd(['diff', doc(GOOD)], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toMatch(/\+ ovs\/bridges\/cbr0: bridge/);
    const a = await opd(['apply', doc(GOOD), '-o', 'json'], { env });
    expect(a.code).toBe(0);
    const report = JSON.parse(a.stdout);
    expect(report.status).toBe('ok');
    expect(report.outcomes.map((o: { status: string }) => o.status)).toEqual(['ok', 'ok']);
    expect((await opd(['diff', doc(GOOD)], { env })).code).toBe(0);
  });

  it('exits 1 from audit verify for a tampered log and names the entry', async () => {
    const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit() };
    await opd(['apply', doc(GOOD.replace('tag: 5', 'tag: 6'))], { env });
    const lines = readFileSync(env.OPD_AUDIT_LOG, 'utf8').split('\n');
    // the first change entry (after run.start and the change's write-ahead intent)
    const i = lines.findIndex((l) => l.includes('"result":"ok"'));
    expect(i).toBeGreaterThan(0);
    lines[i] = lines[i].replace('"result":"ok"', '"result":"OK"');
    writeFileSync(env.OPD_AUDIT_LOG, lines.join('\n'));
    const r = await opd(['audit', 'verify'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`chain broken at seq ${i + 1} \\(line ${i + 1}\\): hash does not match the entry \\(entry edited\\)`),
    );
  });

  it('waits for the lock and then exits 75 naming the holder', async () => {
    const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit() };
    const start = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const startTime = start.slice(start.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(
      env.OPD_AUDIT_LOG + '.lock',
      JSON.stringify({ pid: process.pid, start: startTime, cmd: 'apply other.yaml' }),
    );
    const r = await opd(['apply', '--lock-wait', '0.3', doc(GOOD)], { env });
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(new RegExp(`another opd run holds .*\\(pid ${process.pid}: apply other.yaml\\)`));
  });

  it('serializes applies started at the same time: whole runs, never interleaved', async () => {
    const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: audit() };
    const docs = [0, 1, 2].map((i) =>
      doc(
        `version: 1\nplugins:\n  ovs:\n    bridges:\n      par${i}:\n        ports:\n          pp${i}a: {}\n          pp${i}b: {}\n`,
      ),
    );
    const rs = await Promise.all(docs.map((d) => opd(['apply', d], { env })));
    expect(rs.map((r) => r.code)).toEqual([0, 0, 0]);
    const entries = readFileSync(env.OPD_AUDIT_LOG, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const runs = entries.map((e) => e.run);
    // each run's entries are contiguous
    const seen = new Set<string>();
    for (let i = 0; i < runs.length; i++) {
      if (i > 0 && runs[i] !== runs[i - 1]) {
        expect(seen.has(runs[i])).toBe(false);
        seen.add(runs[i - 1]);
      }
    }
    expect(new Set(runs).size).toBe(3);
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });

  it('exits 77 when the audit log cannot be written', async () => {
    const r = await opd(['apply', doc(GOOD)], {
      env: { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: '/proc/opd-no/audit.jsonl' },
    });
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/cannot create \/proc\/opd-no/);
    expect(r.stderr).toMatch(/hint: .*--audit-log/);
  });

  it('prints the dependency graph as DOT', async () => {
    const r = await opd([
      'graph',
      doc('version: 1\nplugins:\n  ovs:\n    bridges:\n      a: { depends_on: [ovs/bridges/b] }\n      b: {}\n'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/digraph opd/);
    expect(r.stdout).toContain('"ovs/bridges/a" -> "ovs/bridges/b"');
  });

  it('reports reachable and unreachable backends in doctor', async () => {
    const ok = await opd(['doctor', '--plugin', 'ovs'], { env: { OPD_OVS_DB: ovs.db } });
    expect(ok.stdout).toMatch(/ok\s+ovs: database/);
    const bad = await opd(['doctor', '--plugin', 'ovs'], { env: { OPD_OVS_DB: 'unix:/nonexistent.sock' } });
    expect(bad.code).toBe(69);
    expect(bad.stdout).toMatch(/FAIL ovs: database/);
  });
});
