// The Debian package against the checkout: its size, and its start-up (opd --version, opd validate
// of the demo, a Tab's `opd __complete`) against `node bin/opd.js` of the checkout, in pairs
// (package, checkout, package, checkout, …) so that a machine whose speed drifts hits both alike;
// the ratio is taken pair by pair. The package is built into a temp directory
// (scripts/package-deb.mjs --arch amd64; OPD_BENCH_DEB=FILE uses a built one) and unpacked: its
// /usr/bin/opd wrapper is run with its paths pointing into the unpacked tree.
import { spawnSync, execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ms, tmp } from './lib.mjs';

/** CPU time (user + system, ms) of the children this process has waited for (/proc, 10 ms ticks). */
function childCpuMs() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

function timed(cmd, args) {
  const c = childCpuMs();
  const t = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, OPD_AUDIT_KEY: '/nonexistent' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms: performance.now() - t, cpu: childCpuMs() - c };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run({ progress = () => {} } = {}) {
  const dir = tmp('opd-bench-package-');
  let deb = process.env.OPD_BENCH_DEB;
  if (!deb) {
    execFileSync(process.execPath, [join(ROOT, 'scripts/package-deb.mjs'), '--arch', 'amd64', '--out', dir], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    deb = join(
      dir,
      readdirSync(dir).find((f) => f.endsWith('_amd64.deb')),
    );
  }
  progress(`package ${deb}`);
  const root = join(dir, 'root');
  execFileSync('dpkg-deb', ['-x', deb, root]);
  const wrapper = join(root, 'usr/bin/opd');
  writeFileSync(wrapper, readFileSync(wrapper, 'utf8').replaceAll('/usr/lib/opd/', `${root}/usr/lib/opd/`));
  const installedKiB = Number(execFileSync('dpkg-deb', ['-f', deb, 'Installed-Size'], { encoding: 'utf8' }).trim());
  const demo = join(ROOT, 'examples/demo.yaml');
  const cases = [
    ['opd --version', ['--version']],
    ['opd validate examples/demo.yaml', ['validate', demo]],
    ['opd __complete (a Tab on `opd di`)', ['__complete', '--', 'di']],
  ];
  const k = Number(process.env.OPD_BENCH_RUNS ?? 15);
  const rows = [
    { metric: 'package file (.deb, xz)', value: Math.round(statSync(deb).size / 1024), unit: 'KiB' },
    { metric: 'installed size', value: installedKiB, unit: 'KiB' },
    {
      metric: 'of which the Node.js runtime',
      value: Math.round(statSync(join(root, 'usr/lib/opd/node')).size / 1024),
      unit: 'KiB',
    },
  ];
  for (const [name, args] of cases) {
    // one warm-up each (page cache), then k pairs
    timed(wrapper, args);
    timed('node', [join(ROOT, 'bin/opd.js'), ...args]);
    const a = [];
    const b = [];
    for (let i = 0; i < k; i++) {
      a.push(timed(wrapper, args));
      b.push(timed('node', [join(ROOT, 'bin/opd.js'), ...args]));
    }
    const ratio = (key) => Math.round(median(a.map((x, i) => x[key] / Math.max(1, b[i][key]))) * 100) / 100;
    rows.push({
      metric: name,
      package_ms: ms(median(a.map((x) => x.ms))),
      checkout_ms: ms(median(b.map((x) => x.ms))),
      package_over_checkout: ratio('ms'),
      package_cpu_ms: median(a.map((x) => x.cpu)),
      checkout_cpu_ms: median(b.map((x) => x.cpu)),
      cpu_package_over_checkout: ratio('cpu'),
    });
    progress(name);
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return {
    rows,
    load_after: load,
    notes: `medians of ${k} pairs (package wrapper /usr/bin/opd → /usr/lib/opd/node, then node bin/opd.js of the checkout, alternately), one warm-up each; the ratio is the median of the pairs' ratios; CPU = user + system of the child (10 ms ticks); load average after: ${load}`,
  };
}
