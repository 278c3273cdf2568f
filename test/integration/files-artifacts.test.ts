/**
 * files with an artifact source ({ url | path, sha256 }) against a real HTTP server on loopback
 * that the test starts: fetched once and verified before it is put in place, not fetched again
 * while the file's hash matches (diff never fetches), re-fetched after drift, a wrong checksum
 * fails the file naming both hashes and leaves the old file, a transfer that breaks half-way
 * leaves nothing behind. Paths live under a sandbox root (OPD_ROOT).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { doc as mkdoc, opd, tmp } from '../helpers/opd.js';
import { serveArtifacts, type ArtifactServer } from '../helpers/http.js';

const work = tmp('opd-artifacts-');
const root = join(work, 'root');
// --root must be an existing directory (a missing one is refused with exit 64)
mkdirSync(root, { recursive: true });
const env = { OPD_AUDIT_LOG: join(work, 'audit.jsonl'), OPD_ROOT: root };
let n = 0;
const doc = (text: string) => mkdoc(text, work, `state-${++n}.yaml`);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// a stand-in for an upstream binary (Firecracker's release asset is a static ELF of a few MiB)
const v1 = randomBytes(3 * 1024 * 1024 + 17);
const v2 = randomBytes(1024 * 1024);
let srv: ArtifactServer;

beforeAll(async () => {
  srv = await serveArtifacts();
  srv.files.set('/v1.13.1/firecracker', v1);
  srv.files.set('/v1.13.2/firecracker', v2);
  srv.files.set('/half/firecracker', v2);
  srv.broken.add('/half/firecracker');
});
afterAll(async () => {
  await srv.close();
  rmSync(work, { recursive: true, force: true });
});

const bin = '/usr/local/bin/firecracker';
const target = () => join(root, bin);
const fileDoc = (url: string, sum: string, extra = '') =>
  doc(
    `version: 1\nplugins:\n  files:\n    paths:\n      ${bin}:\n        source: { url: "${url}", sha256: "${sum}" }\n        mode: "0755"\n${extra}`,
  );
/** Temp files opd left beside the target (there must never be any). */
const leftovers = () => readdirSync(join(root, '/usr/local/bin')).filter((f) => f.includes('.opd-'));

describe('files from a URL pinned by sha256', () => {
  it('downloads, verifies and installs the artifact once; diff and a second apply fetch nothing', async () => {
    const d = fileDoc(`${srv.url}/v1.13.1/firecracker`, sha(v1));
    const diff = await opd(['diff', d], { env });
    expect(diff.code, diff.stderr).toBe(2);
    expect(diff.stdout).toMatch(
      new RegExp(`create file \\(from ${srv.url}/v1.13.1/firecracker \\(sha256:${sha(v1).slice(0, 12)}\\)`),
    );
    expect(srv.hits['/v1.13.1/firecracker'] ?? 0).toBe(0); // diff is dry: no download

    const a = await opd(['apply', d], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(srv.hits['/v1.13.1/firecracker']).toBe(1);
    expect(sha(readFileSync(target()))).toBe(sha(v1));
    expect(statSync(target()).mode & 0o7777).toBe(0o755);

    const again = await opd(['apply', d], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/no changes/);
    expect((await opd(['diff', d], { env })).code).toBe(0);
    expect(srv.hits['/v1.13.1/firecracker']).toBe(1); // not fetched again while the hash matches
    expect(leftovers()).toEqual([]);
  });

  it('fetches again when the file on the host no longer has the hash', async () => {
    writeFileSync(target(), 'tampered\n');
    const d = fileDoc(`${srv.url}/v1.13.1/firecracker`, sha(v1));
    const diff = await opd(['diff', d], { env });
    expect(diff.code).toBe(2);
    expect(diff.stdout).toMatch(/content changed \(sha256:[0-9a-f]{12}.* → sha256:/);
    const a = await opd(['apply', d], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(srv.hits['/v1.13.1/firecracker']).toBe(2);
    expect(sha(readFileSync(target()))).toBe(sha(v1));
  });

  it('refuses a download whose checksum differs, naming both hashes, and keeps the old file', async () => {
    const wrong = sha(Buffer.from('not the artifact'));
    const d = fileDoc(`${srv.url}/v1.13.2/firecracker`, wrong.toUpperCase()); // upper case is read as lower
    const a = await opd(['apply', d], { env });
    expect(a.code).toBe(1);
    const out = a.stdout + a.stderr;
    expect(out).toContain(`the sha256 of ${srv.url}/v1.13.2/firecracker is ${sha(v2)}, the document expects ${wrong}`);
    expect(out).toMatch(/nothing was put in place/);
    expect(out).not.toMatch(/\n\s+at /);
    expect(sha(readFileSync(target()))).toBe(sha(v1)); // untouched
    expect(leftovers()).toEqual([]);
  });

  it('leaves nothing behind when the transfer breaks half-way', async () => {
    const d = fileDoc(`${srv.url}/half/firecracker`, sha(v2));
    const a = await opd(['apply', d], { env });
    expect(a.code).toBe(1);
    expect(a.stdout + a.stderr).toMatch(/half\/firecracker/);
    expect(srv.hits['/half/firecracker']).toBeGreaterThanOrEqual(1);
    expect(sha(readFileSync(target()))).toBe(sha(v1));
    expect(leftovers()).toEqual([]);
  });

  it('names a missing upstream file (HTTP 404) and changes nothing', async () => {
    const d = fileDoc(`${srv.url}/v9.9.9/firecracker`, sha(v2));
    const a = await opd(['apply', d], { env });
    expect(a.code).toBe(1);
    expect(a.stdout + a.stderr).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/v9\.9\.9\/firecracker: HTTP 404/);
    expect(sha(readFileSync(target()))).toBe(sha(v1));
  });

  it('updates to a new version when the document names its URL and hash, atomically', async () => {
    const d = fileDoc(`${srv.url}/v1.13.2/firecracker`, sha(v2));
    const a = await opd(['apply', d], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(a.stdout).toMatch(
      new RegExp(`content changed \\(sha256:${sha(v1).slice(0, 12)}.* → sha256:${sha(v2).slice(0, 12)} from`),
    );
    expect(sha(readFileSync(target()))).toBe(sha(v2));
    expect((await opd(['apply', d], { env })).stdout).toMatch(/no changes/);
  });

  it('takes an artifact from a host path with its sha256, and refuses one whose content differs', async () => {
    const src = join(work, 'guest-agent');
    writeFileSync(src, v1);
    const ok = doc(
      `version: 1\nplugins:\n  files:\n    paths:\n      /opt/nq/bin/guest-agent: { source: { path: ${src}, sha256: ${sha(v1)} }, mode: "0755" }\n`,
    );
    const a = await opd(['apply', ok], { env });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(sha(readFileSync(join(root, '/opt/nq/bin/guest-agent')))).toBe(sha(v1));
    expect((await opd(['apply', ok], { env })).stdout).toMatch(/no changes/);
    writeFileSync(src, v2); // the source changed, the document did not: the installed file stays
    expect((await opd(['apply', ok], { env })).stdout).toMatch(/no changes/);
    rmSync(join(root, '/opt/nq/bin/guest-agent'));
    const bad = await opd(['apply', ok], { env });
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toContain(`the sha256 of ${src} is ${sha(v2)}, the document expects ${sha(v1)}`);
    expect(existsSync(join(root, '/opt/nq/bin/guest-agent'))).toBe(false);
  });

  it('rejects an artifact without a sha256, or with both url and path, at validation', async () => {
    const r = await opd([
      'validate',
      doc(`version: 1\nplugins:\n  files:\n    paths:\n      /x: { source: { url: "${srv.url}/x" } }\n`),
    ]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/sha256/);
    const both = await opd([
      'validate',
      doc(
        `version: 1\nplugins:\n  files:\n    paths:\n      /x: { source: { url: "${srv.url}/x", path: /x, sha256: ${sha(v1)} } }\n`,
      ),
    ]);
    expect(both.code).toBe(65);
  });
});
