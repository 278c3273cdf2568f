/**
 * packages from sources other than the host's repositories, against real apt/dpkg (and
 * PackageKit for local .debs) and a real HTTP server on loopback that the test starts:
 * - `repositories`: a signed flat repository the test builds (its own throwaway OpenPGP key,
 *   Release and InRelease), written as a deb822 file with the key embedded in Signed-By, taken
 *   from a URL pinned by its fingerprint, inline or from a file; refreshed when written, its
 *   packages installable in the same run; a wrong fingerprint or a key that does not sign the
 *   repository fails and changes nothing; `state: absent` removes the file and its lists.
 * - `deb:` a local .deb from a URL pinned by its sha256, fetched once into the source cache.
 * The host's apt is shared: the whole file holds the apt test lock (others' apt calls wait).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { doc as mkdoc, opd, tmp, uniq } from '../helpers/opd.js';
import { serveArtifacts, type ArtifactServer } from '../helpers/http.js';
import { ensureSystemd } from '../helpers/systemd.js';
import { APT_LOCK } from '../helpers/aptrepo.js';

const u = uniq(5);
const work = tmp('opd-pkgsrc-');
const repoDir = join(work, 'srv');
const gnupg = join(work, 'gnupg');
const cache = join(work, 'cache');
const REPO_PKG = `opd-t25-${u}-r`;
const DEB_PKG = `opd-t25-${u}-d`;
const DEP_PKG = `opd-t25-${u}-e`;
const NAME = `t25-${u}`;
const SOURCES = `/etc/apt/sources.list.d/opd-${NAME}.sources`;
let n = 0;
const doc = (text: string) => mkdoc(text, work, `state-${++n}.yaml`);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let srv: ArtifactServer;
let lock: ResultPromise | undefined;
let fpr = '';
let otherKey = '';
const debs: Record<string, Buffer> = {};

async function gpg(args: string[], home = gnupg) {
  return execa('gpg', ['--batch', '--quiet', '--homedir', home, ...args]);
}

async function buildDeb(name: string, version: string, depends?: string): Promise<Buffer> {
  const root = join(work, 'build', `${name}-${version}`);
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(root, 'DEBIAN/control'),
    [
      `Package: ${name}`,
      `Version: ${version}`,
      'Architecture: all',
      'Maintainer: opd tests <t@invalid>',
      ...(depends ? [`Depends: ${depends}`] : []),
      'Description: opd test package',
      '',
    ].join('\n'),
  );
  const out = join(work, 'build', `${name}_${version}_all.deb`);
  await execa('dpkg-deb', ['--build', '--root-owner-group', root, out]);
  return readFileSync(out);
}

async function dpkgVersion(name: string): Promise<string | undefined> {
  const r = await execa('dpkg-query', ['-W', '-f=${Version} ${db:Status-Status}', name], { reject: false });
  const [v, st] = String(r.stdout).split(' ');
  return st === 'installed' ? v : undefined;
}

async function candidateFromTestRepo(name: string): Promise<boolean> {
  const r = await execa('apt-cache', ['policy', name], { reject: false });
  return String(r.stdout).includes(srv.url.replace('http://', 'http://'));
}

beforeAll(async () => {
  await ensureSystemd();
  // hold the apt test lock for the whole file: the repository file exists only while we hold it
  // its own process group (flock and its sleep), ended as one in afterAll; no pipes to wait for
  lock = execa('flock', [APT_LOCK, 'sleep', '3600'], { reject: false, detached: true, stdio: 'ignore' });
  for (let i = 0; i < 600 && !(await execa('flock', ['-n', APT_LOCK, 'true'], { reject: false })).failed; i++)
    await new Promise((r) => setTimeout(r, 100));
  mkdirSync(gnupg, { mode: 0o700 });
  await gpg(['--passphrase', '', '--quick-gen-key', `opd test ${u} <t@invalid>`, 'ed25519', 'sign', 'never']);
  fpr = /^fpr:+([0-9A-F]{40}):/m.exec(String((await gpg(['--with-colons', '--fingerprint'])).stdout))![1];
  mkdirSync(join(repoDir, 'pool'), { recursive: true });
  writeFileSync(join(repoDir, 'key.asc'), String((await gpg(['--export', '--armor'])).stdout) + '\n');
  writeFileSync(
    join(work, 'key.gpg'),
    (await execa('gpg', ['--batch', '--homedir', gnupg, '--export'], { encoding: 'buffer' })).stdout,
  );
  const other = join(work, 'gnupg-other');
  mkdirSync(other, { mode: 0o700 });
  await gpg(['--passphrase', '', '--quick-gen-key', 'someone else <o@invalid>', 'ed25519', 'sign', 'never'], other);
  otherKey = String((await gpg(['--export', '--armor'], other)).stdout);
  // the repository: one package, flat, signed
  writeFileSync(join(repoDir, 'pool', `${REPO_PKG}_1.0_all.deb`), await buildDeb(REPO_PKG, '1.0'));
  const scan = await execa('dpkg-scanpackages', ['--multiversion', 'pool', '/dev/null'], { cwd: repoDir });
  const packages = Buffer.from(String(scan.stdout) + '\n');
  writeFileSync(join(repoDir, 'Packages'), packages);
  writeFileSync(
    join(repoDir, 'Release'),
    [
      'Origin: opd-test',
      'Label: opd-test',
      'Suite: stable',
      'Codename: stable',
      `Date: ${new Date().toUTCString()}`,
      'Architectures: all amd64',
      'SHA256:',
      ` ${sha(packages)} ${packages.length} Packages`,
      '',
    ].join('\n'),
  );
  await gpg(['--yes', '--clearsign', '-o', join(repoDir, 'InRelease'), join(repoDir, 'Release')]);
  // stand-alone .debs, served beside it
  mkdirSync(join(repoDir, 'debs'));
  for (const [file, b] of [
    [`${DEB_PKG}_1.0_all.deb`, await buildDeb(DEB_PKG, '1.0')],
    [`${DEB_PKG}_2.0_all.deb`, await buildDeb(DEB_PKG, '2.0')],
    [`${DEP_PKG}_1.0_all.deb`, await buildDeb(DEP_PKG, '1.0', REPO_PKG)],
  ] as const) {
    debs[file] = b;
    writeFileSync(join(repoDir, 'debs', file), b);
  }
  srv = await serveArtifacts(repoDir);
}, 120_000);

afterAll(async () => {
  await execa('dpkg', ['--purge', REPO_PKG, DEB_PKG, DEP_PKG], { reject: false });
  rmSync(SOURCES, { force: true });
  for (const f of readdirSync('/var/lib/apt/lists'))
    if (f.startsWith(srv.url.replace('http://', '').replace(/\//g, '_'))) rmSync(join('/var/lib/apt/lists', f));
  await srv?.close();
  if (lock?.pid) process.kill(-lock.pid, 'SIGTERM');
  await lock?.catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

const env = (backend = 'apt') => ({
  OPD_AUDIT_LOG: join(work, 'audit.jsonl'),
  OPD_PACKAGES_BACKEND: backend,
  OPD_SOURCE_CACHE: cache,
});

function repoDoc(key: string, installed = ''): string {
  return doc(
    `version: 1\nplugins:\n  packages:\n    repositories:\n      ${NAME}:\n        uris: ["${srv.url}/"]\n        suites: ["./"]\n        key: ${key}\n${installed ? `    installed:\n${installed}` : ''}`,
  );
}

describe('packages.repositories (deb822, Signed-By)', { timeout: 300_000 }, () => {
  it('adds a repository whose key comes from a URL pinned by its fingerprint, and installs from it in the same run', async () => {
    const d = repoDoc(
      `{ url: "${srv.url}/key.asc", fingerprint: "${fpr.replace(/(.{4})/g, '$1 ').trim()}" }`,
      `      ${REPO_PKG}: {}\n`,
    );
    const diff = await opd(['diff', d], { env: env() });
    expect(diff.code, diff.stdout + diff.stderr).toBe(2);
    expect(diff.stdout).toMatch(/add repository .* key from http/);
    expect(srv.hits['/key.asc'] ?? 0).toBe(0);
    const a = await opd(['apply', d], { env: env() });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const text = readFileSync(SOURCES, 'utf8');
    expect(text).toMatch(/^Types: deb$/m);
    expect(text).toMatch(new RegExp(`^URIs: ${srv.url}/$`, 'm'));
    expect(text).toMatch(/^Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n \.\n/m);
    expect(await dpkgVersion(REPO_PKG)).toBe('1.0');
    expect(srv.hits['/InRelease']).toBeGreaterThanOrEqual(1);
    const again = await opd(['apply', d], { env: env() });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/no changes/);
    expect(srv.hits['/key.asc']).toBe(1); // the key is not fetched again while its fingerprint matches
  });

  it('reads the same key given inline or from a file as no change', async () => {
    const asFile = repoDoc(`{ file: ${join(work, 'key.gpg')}, fingerprint: "${fpr}" }`);
    const r = await opd(['diff', asFile], { env: env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const armored = readFileSync(join(repoDir, 'key.asc'), 'utf8');
    const inl = doc(
      `version: 1\nplugins:\n  packages:\n    repositories:\n      ${NAME}:\n        uris: ["${srv.url}/"]\n        suites: ["./"]\n        key:\n          inline: ${JSON.stringify(armored)}\n`,
    );
    const r2 = await opd(['diff', inl], { env: env() });
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);
  });

  it("refuses a key whose fingerprint is not the document's, naming both, and changes nothing", async () => {
    const before = readFileSync(SOURCES, 'utf8');
    const wrong = 'AAAA'.repeat(10);
    const a = await opd(['apply', repoDoc(`{ url: "${srv.url}/key.asc", fingerprint: "${wrong}" }`)], { env: env() });
    expect(a.code).toBe(1);
    expect(a.stdout + a.stderr).toContain(`has fingerprint ${fpr}, the document expects ${wrong}`);
    expect(readFileSync(SOURCES, 'utf8')).toBe(before);
    // an inline key with another fingerprint is an invalid document
    const v = await opd([
      'validate',
      doc(
        `version: 1\nplugins:\n  packages:\n    repositories:\n      x:\n        uris: ["${srv.url}/"]\n        suites: ["./"]\n        key: { inline: ${JSON.stringify(otherKey)}, fingerprint: "${fpr}" }\n`,
      ),
    ]);
    expect(v.code).toBe(65);
    expect(v.stderr).toMatch(/the inline key's fingerprint is [0-9A-F]{40}, the document names/);
  });

  it('fails a repository whose Release is not signed by the key, and puts the previous file back', async () => {
    const before = readFileSync(SOURCES, 'utf8');
    const d = doc(
      `version: 1\nplugins:\n  packages:\n    repositories:\n      ${NAME}:\n        uris: ["${srv.url}/"]\n        suites: ["./"]\n        key: { inline: ${JSON.stringify(otherKey)} }\n`,
    );
    const a = await opd(['apply', d], { env: env() });
    expect(a.code).toBe(1);
    expect(a.stdout + a.stderr).toMatch(
      /apt-get update of .* failed, the previous state was put back: .*(NO_PUBKEY|not signed)/,
    );
    expect(readFileSync(SOURCES, 'utf8')).toBe(before);
  });

  it('removes the repository and its lists with state: absent', async () => {
    const lists = () => readdirSync('/var/lib/apt/lists').filter((f) => f.startsWith(srv.url.replace('http://', '')));
    expect(lists().length).toBeGreaterThan(0);
    const d = doc(`version: 1\nplugins:\n  packages:\n    repositories:\n      ${NAME}: { state: absent }\n`);
    const a = await opd(['apply', d], { env: env() });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(existsSync(SOURCES)).toBe(false);
    expect(lists()).toEqual([]);
    expect(await candidateFromTestRepo(REPO_PKG)).toBe(false);
    expect((await opd(['apply', d], { env: env() })).stdout).toMatch(/no changes/);
  });
});

for (const backend of ['apt', 'packagekit'] as const) {
  describe(`a package from a .deb pinned by sha256, through ${backend}`, { timeout: 300_000 }, () => {
    const debDoc = (file: string, sum: string) =>
      doc(
        `version: 1\nplugins:\n  packages:\n    installed:\n      ${DEB_PKG}: { deb: { url: "${srv.url}/debs/${file}", sha256: "${sum}" } }\n`,
      );

    beforeAll(async () => {
      await execa('dpkg', ['--purge', DEB_PKG], { reject: false });
      rmSync(cache, { recursive: true, force: true });
    });

    it('fetches it once into the source cache, verifies it and installs it', async () => {
      const f = `${DEB_PKG}_1.0_all.deb`;
      const hits = srv.hits[`/debs/${f}`] ?? 0;
      const d = debDoc(f, sha(debs[f]));
      const a = await opd(['apply', d], { env: env(backend) });
      expect(a.code, a.stdout + a.stderr).toBe(0);
      expect(a.stdout).toMatch(/install from http.*\(sha256:/);
      expect(await dpkgVersion(DEB_PKG)).toBe('1.0');
      expect(srv.hits[`/debs/${f}`]).toBe(hits + 1);
      const again = await opd(['apply', d], { env: env(backend) });
      expect(again.stdout, again.stderr).toMatch(/no changes/);
      expect(srv.hits[`/debs/${f}`]).toBe(hits + 1);
    });

    it('installs another version when the document names its .deb', async () => {
      const f = `${DEB_PKG}_2.0_all.deb`;
      const a = await opd(['apply', debDoc(f, sha(debs[f]))], { env: env(backend) });
      expect(a.code, a.stdout + a.stderr).toBe(0);
      expect(a.stdout).toMatch(/install from \S+_2\.0_all\.deb \(sha256:[0-9a-f]{12}\) over the installed version/);
      expect(await dpkgVersion(DEB_PKG)).toBe('2.0');
    });

    it('refuses a .deb whose checksum differs, naming both hashes', async () => {
      const f = `${DEB_PKG}_1.0_all.deb`;
      const wrong = sha(Buffer.from('x'));
      const a = await opd(['apply', debDoc(f, wrong)], { env: env(backend) });
      expect(a.code).toBe(1);
      expect(a.stdout + a.stderr).toContain(`is ${sha(debs[f])}, the document expects ${wrong}`);
      expect(await dpkgVersion(DEB_PKG)).toBe('2.0');
    });

    it('refuses a .deb that holds another package', async () => {
      const f = `${DEP_PKG}_1.0_all.deb`;
      const a = await opd(['apply', debDoc(f, sha(debs[f]))], { env: env(backend) });
      expect(a.code).toBe(1);
      expect(a.stdout + a.stderr).toContain(`holds package ${DEP_PKG}, not ${DEB_PKG}`);
    });
  });
}

describe('a .deb whose dependency comes from a repository of the same document', { timeout: 300_000 }, () => {
  it('adds the repository first, then installs the .deb with its dependency', async () => {
    await execa('dpkg', ['--purge', DEP_PKG, REPO_PKG], { reject: false });
    const f = `${DEP_PKG}_1.0_all.deb`;
    const d = repoDoc(
      `{ url: "${srv.url}/key.asc", fingerprint: "${fpr}" }`,
      `      ${DEP_PKG}: { deb: { url: "${srv.url}/debs/${f}", sha256: "${sha(debs[f])}" } }\n`,
    );
    const a = await opd(['apply', d], { env: env() });
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await dpkgVersion(DEP_PKG)).toBe('1.0');
    expect(await dpkgVersion(REPO_PKG)).toBe('1.0');
    expect((await opd(['apply', d], { env: env() })).stdout).toMatch(/no changes/);
    const gone = await opd(
      ['apply', doc(`version: 1\nplugins:\n  packages:\n    repositories:\n      ${NAME}: { state: absent }\n`)],
      {
        env: env(),
      },
    );
    expect(gone.code, gone.stdout + gone.stderr).toBe(0);
  });
});
