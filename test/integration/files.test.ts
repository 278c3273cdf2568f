/**
 * files against the real filesystem: under a sandbox root (--root / OPD_ROOT) and under /etc
 * for a path of the test's own. Every document goes through the built CLI.
 */
import { describe, it, expect, afterAll } from 'vitest';
import {
  writeFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { opd, doc as mkdoc, tmp, uniq } from '../helpers/opd.js';

const u = uniq(6);
const work = tmp('opd-files-');
/** Documents go into the test's own directory (removed afterwards), one file per document. */
let docs = 0;
const doc = (text: string) => mkdoc(text, work, `state-${++docs}.yaml`);
const root = join(work, 'root');
// --root must be an existing directory (a missing one is refused with exit 64)
mkdirSync(root, { recursive: true });
const audit = join(work, 'audit.jsonl');
const env = { OPD_AUDIT_LOG: audit, OPD_ROOT: root };
const SECRET = `s3cr3t-${u}-do-not-print`;
const etcPath = `/etc/opd-test-${u}.conf`;

afterAll(() => {
  rmSync(etcPath, { force: true });
  rmSync(work, { recursive: true, force: true });
});

/** Every path under dir with type, mode, owner and a content hash: compared before/after a dry run. */
function dump(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      const extra = st.isSymbolicLink()
        ? readlinkSync(p)
        : st.isFile()
          ? createHash('sha256').update(readFileSync(p)).digest('hex')
          : '';
      out.push(`${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${extra}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.join('\n');
}

function section(body: string): string {
  return `version: 1\nplugins:\n  files:\n    paths:\n${body}`;
}

const v1 = section(`
      /etc/opd-app: { type: directory, mode: "0750", group: daemon }
      /etc/opd-app/app.conf: { content: "listen = 1\\n", mode: "640", owner: root, group: daemon }
      /etc/opd-app/current: { target: app.conf }
      /etc/opd-app/db.secret: { content: "${SECRET}\\n", secret: true, mode: "0600" }
      /etc/sudoers.d/opd-${u}: { content: "root ALL=(ALL) ALL\\n", mode: "0440", validate: "visudo -cf %s" }
`);

const v2 = section(`
      /etc/opd-app: { type: directory, mode: "0755", group: daemon }
      /etc/opd-app/app.conf: { content: "listen = 2\\n", mode: "0644", owner: root, group: root }
      /etc/opd-app/current: { target: db.secret }
      /etc/opd-app/db.secret: { content: "${SECRET}-rotated\\n", secret: true, mode: "0600" }
      /etc/sudoers.d/opd-${u}: { content: "root ALL=(ALL) NOPASSWD: ALL\\n", mode: "0440", validate: "visudo -cf %s" }
`);

const absent = section(`
      /etc/opd-app/app.conf: { state: absent }
      /etc/opd-app/current: { state: absent }
      /etc/opd-app/db.secret: { state: absent }
      /etc/opd-app: { state: absent }
      /etc/sudoers.d/opd-${u}: { state: absent }
`);

describe('files under a sandbox root', () => {
  const outputs: string[] = [];
  const run = async (args: string[], e: Record<string, string> = env) => {
    const r = await opd(args, { env: e });
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  it('creates files, a directory and a symlink with mode, owner and group', async () => {
    const r = await run(['apply', doc(v1)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const conf = join(root, 'etc/opd-app/app.conf');
    expect(readFileSync(conf, 'utf8')).toBe('listen = 1\n');
    expect((statSync(conf).mode & 0o7777).toString(8)).toBe('640');
    expect(statSync(conf).gid).toBe(1); // daemon
    expect(statSync(join(root, 'etc/opd-app')).isDirectory()).toBe(true);
    expect((statSync(join(root, 'etc/opd-app')).mode & 0o7777).toString(8)).toBe('750');
    expect(readlinkSync(join(root, 'etc/opd-app/current'))).toBe('app.conf');
    expect(readFileSync(join(root, 'etc/opd-app/db.secret'), 'utf8')).toBe(`${SECRET}\n`);
    expect((statSync(join(root, `etc/sudoers.d/opd-${u}`)).mode & 0o7777).toString(8)).toBe('440');
  });

  it('reports no changes on a second apply and exits 0 from diff', async () => {
    const r = await run(['apply', doc(v1)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no changes');
    expect((await run(['diff', doc(v1)])).code).toBe(0);
  });

  it('leaves the host byte-identical when diffing pending changes', async () => {
    const before = dump(root);
    const r = await run(['diff', doc(v2)]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('content changed (sha256:');
    // a secret's fingerprints are stand-ins: <secret> on the console, keyed hashes in the trail
    expect(r.stdout).toMatch(/db\.secret: secret content changed \(<secret> → <secret>, \d+ B\)$/m);
    const j = await run(['diff', '-o', 'json', doc(v2)]);
    expect(j.code).toBe(2);
    expect(dump(root)).toBe(before);
  });

  it('changes content, mode, owner, group and a symlink target', async () => {
    const r = await run(['apply', doc(v2)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const conf = join(root, 'etc/opd-app/app.conf');
    expect(readFileSync(conf, 'utf8')).toBe('listen = 2\n');
    expect((statSync(conf).mode & 0o7777).toString(8)).toBe('644');
    expect(statSync(conf).gid).toBe(0);
    expect(readlinkSync(join(root, 'etc/opd-app/current'))).toBe('db.secret');
    expect(readFileSync(join(root, 'etc/opd-app/db.secret'), 'utf8')).toBe(`${SECRET}-rotated\n`);
    expect((await run(['apply', doc(v2)])).stdout).toContain('no changes');
  });

  it('keeps the old file when validation fails, and fails the change', async () => {
    const p = join(root, `etc/sudoers.d/opd-${u}`);
    const old = readFileSync(p, 'utf8');
    const bad = section(
      `      /etc/sudoers.d/opd-${u}: { content: "root ALL=(ALL\\n", mode: "0440", validate: "visudo -cf %s" }\n`,
    );
    const r = await run(['apply', doc(bad)]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('the old file was left in place');
    expect(readFileSync(p, 'utf8')).toBe(old);
    expect(readdirSync(join(root, 'etc/sudoers.d')).filter((n) => n.includes('.opd-'))).toEqual([]);
  });

  it('never shows secret content when its validation fails', async () => {
    const bad = section(
      `      /etc/opd-app/db.secret: { content: "${SECRET} ALL=(ALL\\n", secret: true, validate: "visudo -cf %s" }\n`,
    );
    const r = await run(['apply', doc(bad)]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('withheld because the content is secret');
  });

  it('handles a 10 MB content and reports no changes the second time', async () => {
    const big = 'x'.repeat(10 * 1024 * 1024 - 1) + '\n';
    const d = doc(
      `version: 1\nplugins:\n  files:\n    paths:\n      /var/lib/opd-big/blob: { content: ${JSON.stringify(big)} }\n`,
    );
    const r = await run(['apply', d]);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(join(root, 'var/lib/opd-big/blob')).size).toBe(10 * 1024 * 1024);
    expect(r.stdout.length).toBeLessThan(10_000);
    const again = await run(['apply', d]);
    expect(again.stdout).toContain('no changes');
    expect(statSync(audit).size).toBeLessThan(1024 * 1024);
  });

  it('removes what the document marks absent', async () => {
    const r = await run(['apply', doc(absent)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(existsSync(join(root, 'etc/opd-app'))).toBe(false);
    expect(existsSync(join(root, `etc/sudoers.d/opd-${u}`))).toBe(false);
    expect((await run(['apply', doc(absent)])).stdout).toContain('no changes');
  });

  it('never prints secret content, nor writes it to the audit trail', async () => {
    const trail = readFileSync(audit, 'utf8');
    expect(outputs.join('\n') + trail).not.toContain(SECRET);
    // a text that is not secret is shown as a content diff (issue 26), and its removal only by size;
    // the trail keeps file contents as keyed hashes all the same
    expect(outputs.join('\n')).toContain('+listen = 2');
    expect(outputs.join('\n')).toMatch(
      /\(content: removed \(\d+ B\), not shown: only texts the document holds are diffed\)/,
    );
    expect(trail).not.toContain('listen = 2');
  });

  it('keeps an intact audit chain', async () => {
    const r = await opd(['audit', 'verify'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});

describe('files with --rollback', () => {
  it('restores changed content and mode and puts a removed file back when a later change fails', async () => {
    const rroot = join(work, 'rroot');
    mkdirSync(rroot);
    const e = { OPD_AUDIT_LOG: join(work, 'rb-audit.jsonl'), OPD_ROOT: rroot };
    const before = section(
      `      /etc/a.conf: { content: "old a\\n", mode: "0640" }\n      /etc/b.conf: { content: "old b\\n" }\n`,
    );
    expect((await opd(['apply', doc(before)], { env: e })).code).toBe(0);
    const snapshot = dump(rroot);
    const after = section(
      `      /etc/a.conf: { content: "new a\\n", mode: "0600" }\n      /etc/b.conf: { state: absent }\n      /etc/c.conf: { content: "c ALL=(\\n", validate: "visudo -cf %s" }\n`,
    );
    const r = await opd(['apply', '--rollback', doc(after)], { env: e });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/rollback ok +~ files\/paths\/etc\/a\.conf/);
    expect(dump(rroot)).toBe(snapshot);
    expect((await opd(['audit', 'verify'], { env: e })).code).toBe(0);
  });
});

describe('files copied from a source', () => {
  it('copies a host file, sees when the source changes, and reports no changes otherwise', async () => {
    const sroot = join(work, 'src-root');
    mkdirSync(sroot);
    const e = { OPD_AUDIT_LOG: join(work, 'src-audit.jsonl'), OPD_ROOT: sroot };
    const src = join(work, 'source.conf');
    writeFileSync(src, 'from source 1\n');
    const d = doc(section(`      /etc/copied.conf: { source: ${JSON.stringify(src)}, mode: "0600" }\n`));
    expect((await opd(['apply', d], { env: e })).code).toBe(0);
    expect(readFileSync(join(sroot, 'etc/copied.conf'), 'utf8')).toBe('from source 1\n');
    expect((await opd(['apply', d], { env: e })).stdout).toContain('no changes');
    writeFileSync(src, 'from source 2\n');
    const before = dump(sroot);
    const r = await opd(['diff', d], { env: e });
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('content changed (sha256:');
    expect(dump(sroot)).toBe(before);
    expect((await opd(['apply', d], { env: e })).code).toBe(0);
    expect(readFileSync(join(sroot, 'etc/copied.conf'), 'utf8')).toBe('from source 2\n');
    expect((await opd(['audit', 'verify'], { env: e })).code).toBe(0);
  });
});

describe('files under /etc', () => {
  const e = { OPD_AUDIT_LOG: join(work, 'etc-audit.jsonl') };
  it('writes, changes and removes a file of its own under /etc', async () => {
    const mk = (c: string, mode: string) =>
      doc(section(`      ${etcPath}: { content: ${JSON.stringify(c)}, mode: "${mode}", owner: root, group: root }\n`));
    expect((await opd(['apply', mk('a = 1\n', '0640')], { env: e })).code).toBe(0);
    expect(readFileSync(etcPath, 'utf8')).toBe('a = 1\n');
    expect((statSync(etcPath).mode & 0o7777).toString(8)).toBe('640');
    const again = await opd(['apply', mk('a = 1\n', '0640')], { env: e });
    expect(again.stdout).toContain('no changes');
    const before = readFileSync(etcPath);
    expect((await opd(['diff', mk('a = 2\n', '0600')], { env: e })).code).toBe(2);
    expect(readFileSync(etcPath).equals(before)).toBe(true);
    expect((statSync(etcPath).mode & 0o7777).toString(8)).toBe('640');
    const ch = await opd(['apply', mk('a = 2\n', '0600')], { env: e });
    expect(ch.code, ch.stdout + ch.stderr).toBe(0);
    expect(ch.stdout).toContain('mode 0640 → 0600');
    expect(readFileSync(etcPath, 'utf8')).toBe('a = 2\n');
    const gone = await opd(['apply', doc(section(`      ${etcPath}: { state: absent }\n`))], { env: e });
    expect(gone.code).toBe(0);
    expect(existsSync(etcPath)).toBe(false);
    expect((await opd(['audit', 'verify'], { env: e })).code).toBe(0);
  });
});

describe('files with hostile values', () => {
  const cases: [string, string][] = [
    ['a path with ..', `      /etc/../etc/opd-evil-${u}: { content: "x" }\n`],
    ['a path ending in ..', `      /tmp/..: { content: "x" }\n`],
    ['a relative path', `      etc/opd-evil-${u}: { content: "x" }\n`],
    ['a path with an empty segment', `      /etc//opd-evil-${u}: { content: "x" }\n`],
    ['a source with ..', `      /etc/opd-evil-${u}: { source: "/etc/../etc/shadow" }\n`],
    [
      'a validate command with shell syntax',
      `      /etc/opd-evil-${u}: { content: "x", validate: "visudo -cf %s; touch /tmp/opd-pwned-${u}" }\n`,
    ],
    ['an owner with shell metacharacters', `      /etc/opd-evil-${u}: { content: "x", owner: "root;id" }\n`],
    ['a mode that is not octal', `      /etc/opd-evil-${u}: { content: "x", mode: "0999" }\n`],
  ];
  for (const [what, body] of cases)
    it(`rejects ${what} with exit 65 before touching anything`, async () => {
      const r = await opd(['apply', doc(section(body))], { env });
      expect(r.code, r.stdout + r.stderr).toBe(65);
      expect(existsSync(`/etc/opd-evil-${u}`)).toBe(false);
      expect(existsSync(join(root, `etc/opd-evil-${u}`))).toBe(false);
      expect(existsSync(`/tmp/opd-pwned-${u}`)).toBe(false);
    });

  it('rejects content above 16 MiB without echoing it', async () => {
    const d = doc(section(`      /etc/opd-evil-${u}: { content: "${SECRET}${'y'.repeat(16 * 1024 * 1024)}" }\n`));
    const r = await opd(['validate', d], { env });
    expect(r.code).toBe(65);
    expect(r.stderr + r.stdout).not.toContain(SECRET);
  });

  it('refuses to follow a symlink inside the sandbox root out of it', async () => {
    const sroot = join(work, 'sroot');
    const outside = join(work, 'outside');
    mkdirSync(sroot, { recursive: true });
    mkdirSync(outside, { recursive: true });
    symlinkSync(outside, join(sroot, 'etc'));
    const r = await opd(['apply', '--root', sroot, doc(section(`      /etc/escape-${u}.conf: { content: "x" }\n`))], {
      env,
    });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('leads outside the root');
    expect(readdirSync(outside)).toEqual([]);
  });

  it('lets other resources depend on a file by its address', async () => {
    const d = doc(
      `version: 1\nplugins:\n  files:\n    paths:\n      /etc/dep-${u}.conf: { content: "x" }\n  kmod:\n    modules:\n      opdt${u}: { persist: true, depends_on: ["files/paths//etc/dep-${u}.conf"] }\n`,
    );
    const r = await opd(['diff', '-o', 'json', d], { env });
    expect(r.code, r.stderr).toBe(2);
    const plan = JSON.parse(r.stdout) as { changes: { address: string; depends_on: string[] }[] };
    expect(plan.changes.find((c) => c.address.startsWith('kmod/'))?.depends_on).toContain(
      `files/paths//etc/dep-${u}.conf`,
    );
  });

  it('runs a validate command without a shell: %s is one argument even with spaces', async () => {
    const d = doc(section(`      "/etc/opd argv ${u}.conf": { content: "x", validate: "/usr/bin/test -f %s" }\n`));
    const r = await opd(['apply', d], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(root, `etc/opd argv ${u}.conf`), 'utf8')).toBe('x');
  });
});
