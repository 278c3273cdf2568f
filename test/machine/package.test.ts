/**
 * The Debian package as a user gets it: built by `npm run package` (scripts/package-deb.mjs),
 * checked by lintian, its arm64 runtime run under qemu-user, and the amd64 one installed with apt
 * on a freshly booted Debian 12 machine that reaches no repository at all: `opd --version`,
 * `man opd`, a Tab completion in an interactive bash, `systemctl enable --now opd` reaching
 * active with a document, `apt remove` keeping the audit trail, `apt purge` removing /etc/opd.
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, copyFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/opd.js';
import { baseImage, PackageMachine } from './package-machine.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const OUT = mkdtempSync(join(tmpdir(), 'opd-deb-'));
const deb = (arch: string) => join(OUT, `opd_${VERSION}_${arch}.deb`);

beforeAll(async () => {
  // the package of this checkout (npm test has built it; the runtime tarballs are cached)
  const r = await execa('node', [join(ROOT, 'scripts/package-deb.mjs'), '--out', OUT], { reject: false });
  if (r.exitCode !== 0) throw new Error(`npm run package failed:\n${r.stderr}`);
}, 1_800_000);

afterAll(() => rmSync(OUT, { recursive: true, force: true }));

/** The tags lintian reports (overridden ones left out). */
async function lintian(file: string): Promise<string[]> {
  const r = await execa('lintian', ['--pedantic', '-I', '--no-tag-display-limit', file], { reject: false });
  return `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /^[EWIPX]: /.test(l));
}

describe('the Debian package', () => {
  it.each(['amd64', 'arm64'])(
    'opd_%s.deb is lintian clean: every tag lintian reports is explained in packaging/deb/lintian-overrides',
    async (arch) => {
      expect(existsSync(deb(arch))).toBe(true);
      expect(await lintian(deb(arch))).toEqual([]);
    },
  );

  it('holds the command, its runtime, the units, the bus policy, man pages, completions, /etc/opd and /var/lib/opd', async () => {
    const list = String((await execa('dpkg-deb', ['-c', deb('amd64')])).stdout);
    for (const [mode, path] of [
      ['-rwxr-xr-x', './usr/bin/opd'],
      ['-rwxr-xr-x', './usr/lib/opd/node'],
      ['-rw-r--r--', './lib/systemd/system/opd.service'],
      ['-rw-r--r--', './lib/systemd/system/opd-boot.service'],
      ['-rw-r--r--', './usr/share/dbus-1/system.d/org.opd.Reconciler1.conf'],
      ['-rw-r--r--', './usr/share/man/man1/opd.1.gz'],
      ['-rw-r--r--', './usr/share/man/man5/opd-state.5.gz'],
      ['-rw-r--r--', './usr/share/man/man8/opd-daemon.8.gz'],
      ['-rw-r--r--', './usr/share/bash-completion/completions/opd'],
      ['-rw-r--r--', './usr/share/zsh/vendor-completions/_opd'],
      ['-rw-r--r--', './usr/share/fish/vendor_completions.d/opd.fish'],
      ['-rw-r--r--', './etc/opd/state.yaml'],
      ['drwx------', './etc/opd/secrets/'],
      ['drwx------', './var/lib/opd/'],
      ['-rw-r--r--', './usr/share/doc/opd/docs/tutorial.md'],
    ])
      expect(list).toMatch(
        new RegExp(`^${mode.replace(/-/g, '\\-')} root/root .* ${path.replace(/\./g, '\\.')}$`, 'm'),
      );
    const conffiles = String((await execa('dpkg-deb', ['-I', deb('amd64'), 'conffiles'])).stdout);
    expect(conffiles.trim()).toBe('/etc/opd/state.yaml');
  });

  it('ships the V8 code cache only in the package of the architecture that made it (an x64 cache crashes node on arm64)', async () => {
    const amd64 = String((await execa('dpkg-deb', ['-c', deb('amd64')])).stdout);
    const arm64 = String((await execa('dpkg-deb', ['-c', deb('arm64')])).stdout);
    expect(amd64).toMatch(/ \.\/usr\/lib\/opd\/dist\/bundle\/opd\.cjs\.cache$/m);
    expect(amd64).toMatch(/ \.\/usr\/lib\/opd\/dist\/bundle\/cache\.json$/m);
    expect(arm64).not.toMatch(/opd\.cjs\.cache|cache\.json/);
    const dir = mkdtempSync(join(tmpdir(), 'opd-deb-x-'));
    try {
      await execa('dpkg-deb', ['-x', deb('amd64'), dir]);
      const meta = JSON.parse(readFileSync(join(dir, 'usr/lib/opd/dist/bundle/cache.json'), 'utf8')) as {
        arch: string;
      };
      expect(meta.arch).toBe('x64');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs on arm64: its own runtime prints the version and validates the demo under qemu-aarch64 with Debian's arm64 libraries", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opd-arm64-'));
    try {
      await execa('dpkg-deb', ['-x', deb('arm64'), join(dir, 'pkg')]);
      // Debian's arm64 C and C++ runtime, unpacked (no package scripts: nothing runs as arm64 here)
      const libs = await execa(
        'mmdebstrap',
        ['--variant=extract', '--arch=arm64', '--include=libc6,libstdc++6,libgcc-s1', 'bookworm', join(dir, 'libs')],
        { reject: false },
      );
      expect(libs.exitCode, String(libs.stderr).slice(-2000)).toBe(0);
      const node = join(dir, 'pkg/usr/lib/opd/node');
      expect(String((await execa('file', ['-b', node])).stdout)).toMatch(/ARM aarch64/);
      const run = (args: string[]) =>
        execa(
          'qemu-aarch64-static',
          ['-L', join(dir, 'libs'), node, join(dir, 'pkg/usr/lib/opd/bin/opd.js'), ...args],
          {
            reject: false,
            timeout: 600_000,
          },
        );
      const v = await run(['--version']);
      expect(v.stdout).toBe(VERSION);
      // three times: the runtime must start every time, not once in a while
      for (let i = 0; i < 3; i++) {
        const ok = await run(['validate', join(ROOT, 'examples/demo.yaml')]);
        expect(ok.exitCode, `${ok.stderr} (signal ${ok.signal})`).toBe(0);
        expect(ok.stdout).toBe(`ok: ${join(ROOT, 'examples/demo.yaml')} (2 resources in ovs)`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('on a freshly booted Debian 12 machine', () => {
    const m = new PackageMachine('package');
    const file = `opd_${VERSION}_amd64.deb`;

    beforeAll(async () => {
      const image = await baseImage();
      await m.create(image.tar);
      copyFileSync(deb('amd64'), m.path(`/root/${file}`));
      expect(await m.boot()).toMatch(/^(running|degraded)$/);
    }, 1_800_000);

    afterAll(() => m.destroy(), 300_000);

    it('has no opd and no Node.js before the package, no network, and Debian 12 is what boots', async () => {
      expect((await m.exec(['ip', '-o', 'link', 'show'])).stdout.trim().split('\n')).toEqual([
        expect.stringMatching(/^1: lo: /),
      ]);
      expect((await m.exec(['sh', '-c', 'command -v opd node nodejs'])).stdout).toBe('');
      expect(m.read('/etc/debian_version')).toMatch(/^12\./);
    });

    it('installs with apt from the file alone: the machine reaches no repository', async () => {
      // no network at all (--private-network): apt can only use what is installed and the file
      expect((await m.exec(['ip', 'route', 'show', 'table', 'all'])).stdout).not.toMatch(/^default /m);
      const r = await m.exec(['sh', '-c', `cd /root && apt-get install -y ./${file}`], {
        env: { DEBIAN_FRONTEND: 'noninteractive' },
      });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect((await m.exec(['dpkg-query', '-W', '-f', '${Status} ${Version}', 'opd'])).stdout).toBe(
        `install ok installed ${VERSION}`,
      );
    });

    it('runs opd --version with its own runtime', async () => {
      const r = await m.exec(['opd', '--version']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(VERSION);
      expect((await m.exec(['/usr/lib/opd/node', '--version'])).stdout).toMatch(/^v2\d\./);
    });

    it('has its man pages: man opd, opd-state(5), opd-daemon(8)', async () => {
      const r = await m.exec(['man', 'opd'], { env: { MANPAGER: 'cat', MANWIDTH: '100' } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/opd - declarative desired-state reconciler/);
      expect(r.stdout).toMatch(/EXIT STATUS/);
      for (const [sec, page, text] of [
        ['5', 'opd-state', /bridges\.<ifname>\.ports/],
        ['8', 'opd-daemon', /org\.opd\.Reconciler1/],
      ] as const) {
        const p = await m.exec(['man', sec, page], { env: { MANPAGER: 'cat' } });
        expect(p.code, p.stderr).toBe(0);
        expect(p.stdout).toMatch(text);
      }
    });

    it('completes on Tab in an interactive bash after sourcing `opd completion bash`', async () => {
      // a real readline: bash -i on a pseudo-terminal (script), typing `opd comp<Tab> --help`
      const r = await m.exec(['script', '-qfec', 'bash --norc --noprofile -i', '/dev/null'], {
        input:
          'source <(opd completion bash)\nopd comp\t --help\nopd completion ba\t >/tmp/c.sh; echo "[$(head -c 21 /tmp/c.sh)]"\nexit\n',
        env: { TERM: 'dumb', PS1: '$ ' },
        timeout: 120_000,
      });
      expect(r.stdout).toMatch(/Usage: opd completion \[options\] <shell>/);
      expect(r.stdout).toMatch(/\[# bash completion for\]/);
      // and the completion the package installs for every bash (bash-completion's directory)
      const c = await m.exec([
        'bash',
        '-c',
        'source /usr/share/bash-completion/completions/opd; COMP_LINE="opd diff --only fi"; COMP_POINT=${#COMP_LINE}; _opd_complete; echo "${COMPREPLY[*]}"',
      ]);
      expect(c.stdout.trim()).toBe('files firewall');
    });

    it('starts opd.service with a document and it reaches active; the daemon converges it', async () => {
      const doc =
        'version: 1\nplugins:\n  files:\n    paths:\n      /etc/opd-package-test: { content: "converged by opd.service\\n", mode: "0644" }\n';
      expect((await m.exec(['sh', '-c', 'cat > /etc/opd/state.yaml'], { input: doc })).code).toBe(0);
      // --no-block, then wait: a unit that never reports READY shows its journal instead of hanging the test
      const r = await m.exec(['systemctl', 'enable', '--now', '--no-block', 'opd']);
      expect(r.code, r.stderr).toBe(0);
      let state = '';
      for (let i = 0; i < 120 && state !== 'active' && state !== 'failed'; i++) {
        if (i) await new Promise((res) => setTimeout(res, 1000));
        state = (await m.exec(['systemctl', 'is-active', 'opd'])).stdout.trim();
      }
      const journal = await m.exec(['journalctl', '-u', 'opd', '--no-pager', '-n', '60']);
      expect(state, journal.stdout + journal.stderr).toBe('active');
      expect(m.read('/etc/opd-package-test')).toBe('converged by opd.service\n');
      const status = await m.exec(['opd', 'status']);
      expect(status.code, status.stdout + status.stderr).toBe(0);
      const verify = await m.exec(['opd', 'audit', 'verify']);
      expect(verify.code, verify.stderr).toBe(0);
      expect(m.mode('/var/lib/opd')).toBe(0o700);
      expect(m.mode('/etc/opd/secrets')).toBe(0o700);
    });

    it('keeps the audit trail and the configuration on apt remove', async () => {
      const trail = m.read('/var/lib/opd/audit.jsonl');
      expect(trail).toMatch(/"type":"run.start"/);
      const r = await m.exec(['apt-get', 'remove', '-y', 'opd'], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(m.exists('/usr/bin/opd')).toBe(false);
      expect(m.exists('/usr/lib/opd')).toBe(false);
      expect((await m.exec(['systemctl', 'is-active', 'opd'])).stdout.trim()).not.toBe('active');
      expect(m.read('/var/lib/opd/audit.jsonl')).toBe(trail);
      expect(m.exists('/etc/opd/state.yaml')).toBe(true);
    });

    it('removes /etc/opd on apt purge, and still keeps the audit trail', async () => {
      const trail = m.read('/var/lib/opd/audit.jsonl');
      const r = await m.exec(['apt-get', 'purge', '-y', 'opd'], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(m.exists('/etc/opd')).toBe(false);
      expect(m.read('/var/lib/opd/audit.jsonl')).toBe(trail);
      expect((await m.exec(['dpkg-query', '-W', '-f', '${Status}', 'opd'])).stdout).not.toMatch(/installed/);
    });
  });
});
