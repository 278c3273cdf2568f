/**
 * An offline apt repository of tiny .deb packages that the packages tests build themselves:
 * opd-test-a 1.0 and 2.0, opd-test-b 1.0 (depends on opd-test-a), opd-test-c 1.0 (free standing).
 * apt is shared with other test files: every apt/dpkg/opd call that may take the dpkg lock runs
 * under `flock /tmp/opd-apt.lock`.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from './opd.js';

export const APT_LOCK = '/tmp/opd-apt.lock';
export const REPO = '/srv/opd-test-repo';
export const LIST = '/etc/apt/sources.list.d/opd-test.list';
export const TEST_PACKAGES = ['opd-test-a', 'opd-test-b', 'opd-test-c'];

const DEBS: { name: string; version: string; depends?: string }[] = [
  { name: 'opd-test-a', version: '1.0' },
  { name: 'opd-test-a', version: '2.0' },
  { name: 'opd-test-b', version: '1.0', depends: 'opd-test-a' },
  { name: 'opd-test-c', version: '1.0' },
];

const UPDATE_ARGS = [
  '-o',
  'Dir::Etc::sourcelist=sources.list.d/opd-test.list',
  '-o',
  'Dir::Etc::sourceparts=-',
  '-o',
  'APT::Get::List-Cleanup=0',
];

/** Run a command under the shared apt lock. */
export async function locked(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('flock', [APT_LOCK, cmd, ...args], {
    reject: false,
    env: { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', ...env },
    timeout: 300_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function buildRepo(): Promise<void> {
  const work = tmp('opd-debs-');
  rmSync(REPO, { recursive: true, force: true });
  mkdirSync(REPO, { recursive: true });
  for (const d of DEBS) {
    const root = join(work, `${d.name}-${d.version}`);
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    writeFileSync(
      join(root, 'DEBIAN/control'),
      [
        `Package: ${d.name}`,
        `Version: ${d.version}`,
        'Architecture: all',
        'Maintainer: opd tests <t@invalid>',
        ...(d.depends ? [`Depends: ${d.depends}`] : []),
        'Description: opd test package',
        '',
      ].join('\n'),
    );
    await execa('dpkg-deb', ['--build', '--root-owner-group', root, join(REPO, `${d.name}_${d.version}_all.deb`)]);
  }
  const scan = await execa('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], { cwd: REPO });
  writeFileSync(join(REPO, 'Packages'), scan.stdout + '\n');
  await execa('gzip', ['-kf', 'Packages'], { cwd: REPO });
  await execa('chmod', ['-R', 'a+rX', REPO]);
  rmSync(work, { recursive: true, force: true });
  writeFileSync(LIST, `deb [trusted=yes] file:${REPO} ./\n`);
  const u = await locked('apt-get', ['update', '-q', ...UPDATE_ARGS]);
  if (u.code !== 0) throw new Error(`apt-get update of the test repository failed: ${u.stderr}`);
}

/** Purge the test packages (whatever state they are in). */
export async function purgeTestPackages(): Promise<void> {
  const r = await locked('dpkg', ['--purge', ...TEST_PACKAGES]);
  if (r.code !== 0) throw new Error(`dpkg --purge failed: ${r.stderr}`);
}

export async function removeRepo(): Promise<void> {
  await purgeTestPackages();
  rmSync(LIST, { force: true });
  const lists = '/var/lib/apt/lists';
  if (existsSync(lists))
    for (const f of readdirSync(lists))
      if (f.startsWith('_srv_opd-test-repo_')) rmSync(join(lists, f), { force: true });
  rmSync(REPO, { recursive: true, force: true });
}

/** Installed versions of the test packages: name → version. */
export async function installedTestPackages(): Promise<Record<string, string>> {
  const r = await execa('dpkg-query', ['-W', '-f=${Package}\t${Version}\t${db:Status-Status}\n', ...TEST_PACKAGES], {
    reject: false,
  });
  const out: Record<string, string> = {};
  for (const line of String(r.stdout).split('\n')) {
    const [n, v, s] = line.split('\t');
    if (n && s === 'installed') out[n] = v;
  }
  return out;
}
