/**
 * The LXC backend: one `lxc-ls --fancy` per read plus each container's config (node:fs);
 * mutations through lxc-create / lxc-start / lxc-stop / lxc-destroy, all with `-P <lxcpath>`.
 * Every mutating helper takes an ApplyContext, so the read/diff path cannot call it.
 */
import { TUNABLES as CORE_TUNABLES } from '../../core/tunables.js';
import { LXC_PATH, LXC_STOP_TIMEOUT, TUNABLES } from './manifest.js';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { ApplyContext, Obj, Settings } from '../../core/plugin.js';
import { assertApplyContext } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { ExecFailure, inheritedSandbox, runRead, runMutate } from '../../exec.js';
import { createHash } from 'node:crypto';
import { checkToolPaths, makeDir, putFile, removePath, rootOf, withTempFile } from '../../core/hostfs.js';
import { createConfig, rewriteConfig, specFromConfig, type ContainerState, type Marker } from './config.js';
import { settingOf } from '../../core/manifest.js';
import { OVS_DB } from '../../host/settings.js';

const INSTALL_HINT = 'install the lxc package (apt-get install lxc busybox-static)';
/** Graceful stop: lxc-stop waits this long (seconds) before it kills the container (--lxc-stop-timeout; not a number: its default). */
export function stopTimeout(settings: Settings): number {
  const v = Number(settings[LXC_STOP_TIMEOUT.key]);
  return Number.isFinite(v) && v >= 0 && settings[LXC_STOP_TIMEOUT.key] !== undefined
    ? Math.floor(v)
    : Number(LXC_STOP_TIMEOUT.default);
}
export const MARKER = 'opd.json';

/** The lxcpath as the host names it (`--lxc-path`): what the host doors (core/hostfs.ts) are given. */
export function lxcDir(settings: Settings): string {
  return resolve(settingOf(settings, LXC_PATH)!);
}

/** Where the lxcpath is (under `--root` when given): what the lxc tools (-P) and the reads use. */
export function lxcPath(settings: Settings): string {
  return rootOf(settings) + lxcDir(settings);
}

/**
 * LXC attaches a veth to an Open vSwitch bridge itself (`ovs-vsctl add-port`, and del-port
 * when the container stops), against ovs-vsctl's default database. When opd is pointed at
 * another OVS database (--ovs-db unix:DIR/db.sock), OVS_RUNDIR=DIR makes that the default.
 */
export function lxcEnv(settings: Settings): Record<string, string> | undefined {
  const db = settings[OVS_DB.key] as string | undefined; // not its default: lxc's own default then
  const m = db ? /^unix:(.+)\/db\.sock$/.exec(db) : null;
  return m ? { OVS_RUNDIR: m[1] } : undefined;
}

const lxcOpts = (settings: Settings, opts: { timeout?: number; okCodes?: number[] }) => ({
  backend: 'lxc',
  installHint: INSTALL_HINT,
  env: lxcEnv(settings),
  timeout: opts.timeout,
  okCodes: opts.okCodes,
});

/** An lxc tool that only looks (lxc-ls, lxc-info): the read door. */
async function lxc(
  settings: Settings,
  tool: string,
  args: string[],
  opts: { timeout?: number; okCodes?: number[] } = {},
) {
  return runRead(tool, ['-P', lxcPath(settings), ...args], lxcOpts(settings, opts));
}

/** An lxc tool that changes a container: the mutate door (an apply only). */
async function lxcMutate(
  ctx: ApplyContext,
  tool: string,
  args: string[],
  opts: { timeout?: number; okCodes?: number[] } = {},
) {
  return runMutate(ctx, tool, ['-P', lxcPath(ctx.settings), ...args], lxcOpts(ctx.settings, opts));
}

export interface ContainerFacts {
  name: string;
  state: string;
  running: boolean;
  spec: ContainerState;
  rootfs?: string;
  rootfsOwned: boolean;
}

/** `lxc-ls -f -F name,state`: name → state (RUNNING, STOPPED, FROZEN, …). */
export function parseLs(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of out.split('\n')) {
    const cols = l.trim().split(/\s+/);
    if (cols.length < 2 || (cols[0] === 'NAME' && cols[1] === 'STATE')) continue;
    m.set(cols[0], cols[1]);
  }
  return m;
}

export async function listStates(settings: Settings): Promise<Map<string, string>> {
  const path = lxcPath(settings);
  if (!existsSync(path)) {
    // still prove the tools are there (a missing lxc must not read as "no containers")
    await runRead('lxc-ls', ['--version'], { backend: 'lxc', installHint: INSTALL_HINT });
    return new Map();
  }
  return parseLs((await lxc(settings, 'lxc-ls', ['--fancy', '--fancy-format', 'name,state'])).stdout);
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

/** One container's facts from its files (no process). */
export function readContainer(settings: Settings, name: string, state: string): ContainerFacts | undefined {
  const dir = join(lxcPath(settings), name);
  let text: string;
  try {
    text = readFileSync(join(dir, 'config'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const f = specFromConfig(text, readMarker(dir), dir);
  const running = state === 'RUNNING' || state === 'FROZEN' || state === 'STARTING' || state === 'THAWED';
  return { name, state, running, spec: { ...f.spec, running }, rootfs: f.rootfs, rootfsOwned: f.rootfsOwned };
}

/** All containers (or those named) of the lxcpath: one lxc-ls, then config files. */
export async function readContainers(
  settings: Settings,
  only?: (name: string) => boolean,
): Promise<Map<string, ContainerFacts>> {
  const states = await listStates(settings);
  const out = new Map<string, ContainerFacts>();
  for (const name of [...states.keys()].sort()) {
    if (only && !only(name)) continue;
    const c = readContainer(settings, name, states.get(name)!);
    if (c) out.set(name, c);
  }
  return out;
}

function cgroup2Only(): boolean {
  return existsSync('/sys/fs/cgroup/cgroup.controllers');
}

function fail(name: string, what: string, err: unknown, hint?: string): never {
  const msg = err instanceof ExecFailure ? err.message : (err as Error).message;
  throw new OpdError('backend-failed', `lxc: ${what} ${name}: ${msg}`, {
    address: `lxc/containers/${name}`,
    hint,
    cause: err,
  });
}

/** Rewrite the config file for the fields `spec` names (keeps every other line). */
export async function configure(ctx: ApplyContext, name: string, spec: Obj): Promise<void> {
  assertApplyContext(ctx);
  const file = join(lxcPath(ctx.settings), name, 'config');
  try {
    const text = readFileSync(file, 'utf8');
    const next = rewriteConfig(text, spec, cgroup2Only());
    if (next !== text) await putFile(ctx, join(lxcDir(ctx.settings), name, 'config'), next, { mode: 0o640 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw err;
    throw new OpdError('backend-failed', `lxc: cannot rewrite ${file}: ${(err as Error).message}`, {
      address: `lxc/containers/${name}`,
      hint: code === 'ENOENT' ? 'the container disappeared while opd worked on it; run opd apply again' : undefined,
      cause: err,
    });
  }
}

export async function create(ctx: ApplyContext, name: string, spec: Obj): Promise<void> {
  assertApplyContext(ctx);
  const doc = lxcDir(ctx.settings);
  makeDir(ctx, doc);
  // lxc-create makes the container's directory itself: it must not be a link planted there
  checkToolPaths(ctx, [join(doc, name)], 'lxc-create');
  const path = lxcPath(ctx.settings);
  const template = String(spec.template ?? 'busybox');
  if (template === 'none' && (typeof spec.rootfs !== 'string' || !existsSync(spec.rootfs))) {
    throw new OpdError('backend-failed', `lxc: rootfs ${String(spec.rootfs)} of ${name} does not exist`, {
      address: `lxc/containers/${name}`,
      hint: 'template none uses an existing root filesystem: create it first (or order it with depends_on)',
    });
  }
  if (template === 'archive' && (typeof spec.archive !== 'string' || !existsSync(spec.archive))) {
    throw new OpdError('backend-failed', `lxc: template archive ${String(spec.archive)} of ${name} does not exist`, {
      address: `lxc/containers/${name}`,
      hint: 'put the root filesystem archive (e.g. a Proxmox vztmpl .tar.zst) at that path first',
    });
  }
  await withTempFile(ctx, 'create.conf', createConfig(spec), async (conf) => {
    // archive: an empty container (no template) whose rootfs is unpacked from the archive below
    const args = ['-n', name, '-t', template === 'archive' ? 'none' : template, '-f', conf];
    if (template === 'download') {
      args.push('--', '--dist', String(spec.dist), '--release', String(spec.release));
      if (spec.arch) args.push('--arch', String(spec.arch));
    }
    try {
      await lxcMutate(ctx, 'lxc-create', args, { timeout: TUNABLES.lxcCreateMs });
    } catch (err) {
      fail(
        name,
        'could not create',
        err,
        template === 'download'
          ? 'the download template needs the internet; use busybox or none offline'
          : 'check the lxcpath and the template (lxc-create -t busybox needs busybox-static)',
      );
    }
  });
  const dir = join(path, name);
  const owned = template !== 'none';
  const marker: Marker = {
    template,
    rootfs_owned: owned,
    ...(owned ? { rootfs: join(dir, 'rootfs') } : {}),
    ...(template === 'archive' ? { archive: String(spec.archive) } : {}),
  };
  if (template === 'archive') {
    const rootfs = join(dir, 'rootfs');
    makeDir(ctx, join(doc, name, 'rootfs'));
    try {
      // tar picks the decompressor (gzip, xz, zstd) from the archive's magic bytes
      await runMutate(ctx, 'tar', ['-x', '-p', '--numeric-owner', '-f', String(spec.archive), '-C', rootfs], {
        backend: 'lxc',
        installHint: 'apt-get install tar zstd xz-utils',
        timeout: TUNABLES.lxcCreateMs,
      });
    } catch (err) {
      fail(
        name,
        `could not unpack ${String(spec.archive)}`,
        err,
        'the archive must be a root filesystem tarball (gzip, xz or zstd; zstd needs the zstd package)',
      );
    }
  }
  await putFile(ctx, join(doc, name, MARKER), JSON.stringify(marker, null, 2) + '\n', { mode: 0o644 });
  const fields: Obj = { ...spec };
  if (template === 'archive') fields.rootfs = join(dir, 'rootfs');
  if (!Array.isArray(fields.network)) fields.network = [];
  await configure(ctx, name, fields);
}

/**
 * The transient unit that runs a container when opd is a sandboxed service: one per lxcpath and
 * name (systemd unit names allow letters, digits and `:_.\-`; others are escaped as \xNN).
 */
export function containerUnit(settings: Settings, name: string): string {
  const esc = name.replace(/[^A-Za-z0-9:_.-]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `opd-lxc-${esc}-${createHash('sha256').update(lxcPath(settings)).digest('hex').slice(0, 8)}.service`;
}

/**
 * Start a container as a unit of the service manager (`lxc-start -F` as its main process, as
 * LXC's own lxc@.service does): the container gets a clean execution context, never the
 * seccomp filter, no_new_privs, capability bounding set or mount namespace of opd.service
 * (all of which a child would inherit), and outlives a restart of opd. Then wait until it runs.
 */
async function startAsUnit(ctx: ApplyContext, name: string): Promise<void> {
  const path = lxcPath(ctx.settings);
  const unit = containerUnit(ctx.settings, name);
  const env = Object.entries(lxcEnv(ctx.settings) ?? {}).map(([k, v]) => `--setenv=${k}=${v}`);
  try {
    await runMutate(
      ctx,
      'systemd-run',
      [
        '--quiet',
        '--collect',
        `--unit=${unit}`,
        `--description=opd: LXC container ${name} (${path})`,
        '--property=Delegate=yes',
        '--property=KillMode=mixed',
        `--property=TimeoutStopSec=${stopTimeout(ctx.settings) + Math.ceil(TUNABLES.lxcStopGraceMs / 1000)}`,
        ...env,
        '--',
        'lxc-start',
        '-F',
        '-P',
        path,
        '-n',
        name,
      ],
      { backend: 'lxc (systemd-run)', installHint: 'systemd-run comes with systemd' },
    );
    await runMutate(
      ctx,
      'lxc-wait',
      ['-P', path, '-n', name, '-s', 'RUNNING', '-t', String(Math.ceil(TUNABLES.lxcStartMs / 1000))],
      {
        ...lxcOpts(ctx.settings, { timeout: TUNABLES.lxcStartMs + 5_000 }),
      },
    );
  } catch (err) {
    const journal = await runRead('journalctl', ['--no-pager', '-q', '-o', 'cat', '-n', '20', '-u', unit], {
      timeout: CORE_TUNABLES.journalMs,
    }).then(
      (r) => r.stdout.trim(),
      () => '',
    );
    fail(
      name,
      `could not start (unit ${unit})`,
      journal ? new Error(`${(err as Error).message}\n${journal}`) : err,
      `systemctl status ${unit}; run lxc-start -P ${path} -n ${name} -F -l debug -o /dev/stderr to see why`,
    );
  }
}

export async function start(ctx: ApplyContext, name: string): Promise<void> {
  assertApplyContext(ctx);
  if (inheritedSandbox()) return startAsUnit(ctx, name);
  try {
    await lxcMutate(ctx, 'lxc-start', ['-n', name, '-d'], { timeout: TUNABLES.lxcStartMs });
  } catch (err) {
    fail(
      name,
      'could not start',
      err,
      `run lxc-start -P ${lxcPath(ctx.settings)} -n ${name} -F -l debug -o /dev/stderr to see why (a veth link must name an existing bridge)`,
    );
  }
}

/** Graceful stop (lxc-stop -t: the container's halt signal, killed when the timeout passes), then -k if that failed. */
export async function stop(ctx: ApplyContext, name: string): Promise<void> {
  assertApplyContext(ctx);
  try {
    // exit 2: it was not running
    const t = stopTimeout(ctx.settings);
    await lxcMutate(ctx, 'lxc-stop', ['-n', name, '-t', String(t)], {
      timeout: t * 1000 + TUNABLES.lxcStopGraceMs,
      okCodes: [0, 2],
    });
  } catch (err) {
    ctx.log.warn({ container: name, err: (err as Error).message }, 'graceful stop failed; killing');
    try {
      await lxcMutate(ctx, 'lxc-stop', ['-n', name, '-k'], { timeout: TUNABLES.lxcKillMs, okCodes: [0, 2] });
    } catch (e) {
      fail(name, 'could not stop', e);
    }
  }
}

async function kill(ctx: ApplyContext, name: string): Promise<void> {
  try {
    await lxcMutate(ctx, 'lxc-stop', ['-n', name, '-k'], { timeout: TUNABLES.lxcKillMs, okCodes: [0, 2] });
  } catch (e) {
    fail(name, 'could not stop', e);
  }
}

export async function isRunning(settings: Settings, name: string): Promise<boolean> {
  const st = (await listStates(settings)).get(name);
  return st !== undefined && st !== 'STOPPED';
}

function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/**
 * Destroy a container. lxc-destroy deletes lxc.rootfs.path wherever it lies, so it runs only
 * for a container whose rootfs opd created where lxc-create put it (<lxcpath>/<name>/rootfs);
 * otherwise opd removes the container's own files and leaves the rootfs alone.
 * Returns what happened to the rootfs.
 */
export async function destroy(ctx: ApplyContext, name: string): Promise<string> {
  assertApplyContext(ctx);
  const path = lxcPath(ctx.settings);
  const dir = join(path, name);
  const states = await listStates(ctx.settings);
  const facts = readContainer(ctx.settings, name, states.get(name) ?? 'STOPPED');
  if (!facts) return 'already gone';
  if (facts.running) await kill(ctx, name);
  if (facts.rootfsOwned) {
    // lxc-destroy removes the rootfs it finds there: not through a link planted on the way
    checkToolPaths(ctx, [join(lxcDir(ctx.settings), name), join(lxcDir(ctx.settings), name, 'rootfs')], 'lxc-destroy');
    try {
      await lxcMutate(ctx, 'lxc-destroy', ['-n', name], { timeout: TUNABLES.lxcDestroyMs });
    } catch (err) {
      fail(name, 'could not destroy', err);
    }
    return `rootfs ${facts.rootfs} deleted`;
  }
  const rootfs = facts.rootfs ? resolve(facts.rootfs) : undefined;
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry);
    if (rootfs && inside(rootfs, p)) continue; // the rootfs (or a directory holding it) stays
    removePath(ctx, join(lxcDir(ctx.settings), name, entry), { recursive: true });
  }
  removePath(ctx, join(lxcDir(ctx.settings), name), { ifEmpty: true }); // the kept rootfs may be inside it
  return `rootfs ${rootfs ?? '(none)'} kept`;
}
