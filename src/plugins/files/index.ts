/**
 * files: regular files (inline content or a source path), directories and symlinks with mode,
 * owner and group. Reads: lstat + read of the named paths (node:fs, no processes). Writes are
 * atomic (temp file in the same directory, fsync, rename); an optional validate command runs
 * on the temp file first. Content is never printed: summaries carry fingerprints only, and
 * the fingerprint of secret content (`secret: true`, or content that holds a secret value: a
 * secret parameter, a from_file text) is a stand-in that every output masks — `<secret>` on the
 * console, a keyed hash in the audit trail, the saved plan and the daemon's records.
 */
import { liftShorthand } from '../../core/shorthand.js';
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import { lstatSync, readFileSync, readlinkSync, readdirSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import type { ApplyContext, Change, ChangeResult, Edge, Obj, Plugin, ResourceDiff } from '../../core/plugin.js';
import { assertApplyContext, resourceChange, stopRequested } from '../../core/plugin.js';
import type { Entry } from './section.gen.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { sha256 } from '../../core/canonical.js';
import { contentFingerprint, holdsSecret, registerSecretValues, secretStandIn } from '../../core/secrets.js';
import { ExecFailure, runMutate } from '../../exec.js';
import {
  hostPath,
  makeDir,
  putFile,
  putSymlink,
  readAccounts,
  removePath,
  rootOf,
  setMeta,
  type Accounts,
} from '../../core/hostfs.js';
import { watchPaths } from '../../core/watch-paths.js';
import { installArtifact, isArtifact, origin, sha256OfFile, type Artifact } from '../../host/artifact.js';

/** A path's spec in the document, generated from schema/files.schema.json (npm run gen:types). */
export type FileSpec = Entry;
/**
 * A path as read (the section's type): it may be of another type (a socket), content and source
 * may be only a fingerprint, and a directory says whether it has entries.
 */
export type FileState = Omit<Entry, 'type' | 'content' | 'source'> & {
  type?: Entry['type'] | 'other';
  content?: string | Fingerprint;
  source?: string | Fingerprint | Artifact;
  _nonempty?: boolean;
};
export type FilesSection = { paths?: Record<string, FileState> } & Obj;

const NUMERIC = /^[0-9]+$/;

function typeOf(st: Stats): FileState['type'] {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'file';
  return 'other';
}

export function fmtMode(m: number): string {
  return (m & 0o7777).toString(8).padStart(4, '0');
}

/** The fingerprint of a content known only by its hash (binary, or too big to keep). */
function short(hex: string, secret: boolean): string {
  return secret ? secretStandIn(`sha256:${hex}`) : `sha256:${hex.slice(0, 12)}`;
}

/** Whether a path's content is secret: marked so, or holding a secret value (the spec's, or the content as read). */
export function secretContent(spec: FileState, cur?: FileState): boolean {
  if (spec.secret === true) return true;
  return [spec.content, cur?.content].some((c) => typeof c === 'string' && holdsSecret(c));
}

/** A summary's fingerprint of a content (the text, or a fingerprint as read). */
function fpText(v: unknown, secret: boolean): string | undefined {
  if (typeof v === 'string') return contentFingerprint(v, secret);
  const fp = fpOf(v);
  return fp ? short(fp.sha256, secret) : undefined;
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const MAX = 16 * 1024 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The current content as read: the text itself (so that a rollback can restore it; it is only
 * ever hashed, never printed), or just its fingerprint when it is not UTF-8 text or too big.
 */
export interface Fingerprint {
  sha256: string;
  bytes: number;
}
function asText(b: Buffer): string | Fingerprint {
  if (b.length <= MAX) {
    try {
      return utf8.decode(b);
    } catch {
      /* binary */
    }
  }
  return { sha256: sha256(b), bytes: b.length };
}
function fpOf(v: unknown): Fingerprint | undefined {
  if (isArtifact(v)) return undefined;
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return { sha256: sha256(b), bytes: b.length };
  }
  if (isObj(v) && typeof v.sha256 === 'string') return { sha256: v.sha256, bytes: Number(v.bytes) };
  return undefined;
}

function readOne(
  root: string,
  path: string,
  want: FileState,
  acc: Accounts,
  goingAway: Set<string>,
): FileState | undefined {
  const hp = root + path;
  let st: Stats;
  try {
    st = lstatSync(hp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
  const type = typeOf(st);
  const cur: FileState = { type };
  if (type !== 'symlink') cur.mode = fmtMode(st.mode);
  const owner = want.owner !== undefined && NUMERIC.test(want.owner) ? undefined : acc.nameByUid.get(st.uid);
  cur.owner = owner ?? String(st.uid);
  const group = want.group !== undefined && NUMERIC.test(want.group) ? undefined : acc.nameByGid.get(st.gid);
  cur.group = group ?? String(st.gid);
  // steering fields are not host state: they never differ
  if (want.validate !== undefined) cur.validate = want.validate;
  if (want.secret !== undefined) cur.secret = want.secret;
  if (type === 'symlink') cur.target = readlinkSync(hp);
  if (type === 'directory') {
    try {
      // entries the document removes in the same run do not count
      cur._nonempty = readdirSync(hp).some((n) => !goingAway.has(`${path}/${n}`));
    } catch {
      cur._nonempty = true;
    }
  }
  if (type === 'file' && st.size > MAX && want.content !== undefined) {
    // bigger than any content a document may hold: it differs, and it is not read
    cur.content = { sha256: 'not-read', bytes: st.size } satisfies Fingerprint;
  } else if (type === 'file' && want.state === 'absent') {
    // kept (hashed, never shown) so that a rollback can put the file back
    cur.content =
      st.size > MAX ? ({ sha256: 'not-read', bytes: st.size } satisfies Fingerprint) : asText(readFileSync(hp));
  } else if (type === 'file' && isArtifact(want.source)) {
    // an artifact is compared by its hash only: the URL is never fetched by a read
    const got = sha256OfFile(hp);
    cur.source = got === want.source.sha256 ? want.source : { sha256: got ?? 'unreadable', bytes: st.size };
  } else if (type === 'file' && (want.content !== undefined || want.source !== undefined)) {
    const have = readFileSync(hp);
    if (typeof want.content === 'string') {
      const w = Buffer.from(want.content, 'utf8');
      cur.content = w.length === have.length && w.equals(have) ? want.content : asText(have);
    } else if (typeof want.source === 'string') {
      let src: Buffer;
      try {
        src = readFileSync(want.source);
      } catch (e) {
        throw new OpdError(
          'backend-failed',
          `files: cannot read source ${want.source} for ${path}: ${(e as Error).message}`,
          {
            hint: 'source is a host path (not under --root): make it exist and be readable',
          },
        );
      }
      cur.source = src.equals(have) ? want.source : { sha256: sha256(have), bytes: have.length };
    }
  }
  return cur;
}

export function contentHash(spec: FileSpec): { hash: string; bytes: number } | undefined {
  if (spec.content !== undefined) {
    const b = Buffer.from(spec.content, 'utf8');
    return { hash: sha256(b), bytes: b.length };
  }
  return undefined;
}

export interface FileChangeData {
  path: string;
  op: 'write' | 'meta' | 'delete';
  spec: FileSpec;
  /** current type when something of another type must be replaced */
  replace?: string;
  current?: FileState;
  /** content that cannot be written back: only its fingerprint is known */
  lost?: Fingerprint;
}

function acct(owner?: string, group?: string): string {
  if (owner && group) return `${owner}:${group}`;
  if (owner) return owner;
  return group ? `:${group}` : '';
}

export function planFile(d: ResourceDiff): Change<FileChangeData>[] {
  const path = d.name;
  const cur = d.current as FileState | undefined;
  const change = (action: string, summary: string, data: FileChangeData) => resourceChange(d, action, summary, data);
  if (d.action === 'delete') {
    const t = cur?.type ?? 'file';
    const nonEmpty = t === 'directory' && cur?._nonempty === true;
    return [
      {
        ...change('delete', `remove ${t}${nonEmpty ? ' and everything in it' : ''}`, {
          path,
          op: 'delete',
          spec: {},
          current: { type: t },
        }),
        ...(nonEmpty ? { destructive: true } : {}),
      },
    ];
  }
  const want = d.desired as FileSpec;
  const type = want.type ?? 'file';
  // a rollback towards content of which only a fingerprint was kept cannot restore it
  const lost = [want.content, want.source]
    .map(fpOf)
    .find((f, i) => f && typeof [want.content, want.source][i] !== 'string');
  if (lost)
    return [
      change(
        d.action === 'create' ? 'create' : 'update',
        `restore content ${short(lost.sha256, secretContent(want, cur))} (${size(lost.bytes)})`,
        { path, op: 'write', spec: want, lost },
      ),
    ];
  // after the ancestor directories the document names (exact addresses; unknown ones are ignored)
  const after: string[] = [];
  for (let p = dirname(path); p !== '/' && p !== '.'; p = dirname(p)) after.push(`files/paths/${p}`);
  const secret = secretContent(want, cur);
  const parts: string[] = [];
  const ch = contentHash(want);
  const wantFp = want.content !== undefined ? contentFingerprint(want.content, secret) : undefined;
  if (d.action === 'create') {
    if (type === 'file') {
      if (ch) parts.push(secret ? `secret content ${wantFp}, ${size(ch.bytes)}` : `${size(ch.bytes)} ${wantFp}`);
      else if (isArtifact(want.source))
        parts.push(`from ${origin(want.source)} (sha256:${want.source.sha256.slice(0, 12)})`);
      else if (want.source) parts.push(`from ${want.source}`);
      else parts.push('empty');
    }
    if (type === 'symlink') parts.push(`→ ${want.target}`);
    if (want.mode) parts.push(`mode ${want.mode}`);
    const oa = acct(want.owner, want.group);
    if (oa) parts.push(`owner ${oa}`);
    return [{ ...change('create', `create ${type} (${parts.join(', ')})`, { path, op: 'write', spec: want }), after }];
  }
  // update
  const typeChanged = cur?.type !== type;
  let write = typeChanged;
  if (typeChanged) parts.push(`type ${String(cur?.type)} → ${type}`);
  const contentChanged = d.ops.some((o) => /^\/(content|source|target)(\/|$)/.test(o.path));
  if (!typeChanged && contentChanged) {
    write = true;
    if (type === 'symlink') parts.push(`target ${String(cur?.target)} → ${want.target}`);
    else {
      const before = fpText(cur?.content, secret) ?? fpText(cur?.source, secret) ?? 'unknown';
      parts.push(
        `${secret ? 'secret ' : ''}content changed (${before} → ${
          ch
            ? `${wantFp}, ${size(ch.bytes)}`
            : isArtifact(want.source)
              ? `sha256:${want.source.sha256.slice(0, 12)} from ${origin(want.source)}`
              : `copy of ${want.source}`
        })`,
      );
    }
  }
  if (want.mode !== undefined && cur?.mode !== want.mode && !typeChanged)
    parts.push(`mode ${String(cur?.mode)} → ${want.mode}`);
  if (want.owner !== undefined && cur?.owner !== want.owner && !typeChanged)
    parts.push(`owner ${String(cur?.owner)} → ${want.owner}`);
  if (want.group !== undefined && cur?.group !== want.group && !typeChanged)
    parts.push(`group ${String(cur?.group)} → ${want.group}`);
  const destructive = typeChanged && cur?.type === 'directory' && cur?._nonempty === true;
  // ops for the audit trail: the core replaces /content values by keyed hashes
  const data: FileChangeData = {
    path,
    op: write ? 'write' : 'meta',
    spec: want,
    ...(typeChanged ? { replace: String(cur?.type) } : {}),
  };
  return [
    {
      ...change('update', parts.join(', ') || 'update', data),
      after,
      ...(destructive ? { destructive: true, reason: 'replaces a directory that is not empty' } : {}),
    },
  ];
}

/** The uid (owner) or gid (group) of a numeric or named account; a name that does not exist fails the change. */
function resolveId(kind: 'owner' | 'group', name: string | undefined, byName: Map<string, number>, path: string) {
  if (name === undefined) return undefined;
  const id = NUMERIC.test(name) ? Number(name) : byName.get(name);
  if (id !== undefined) return id;
  const [what, plugin, num] = kind === 'owner' ? ['user', 'users', 'uid'] : ['group', 'groups', 'gid'];
  throw new OpdError('backend-failed', `${kind} ${name} of ${path} does not exist`, {
    hint: `create the ${what} first (${plugin} plugin, ${plugin}/${plugin}/${name}) or use a numeric ${num}`,
    address: `files/paths/${path}`,
  });
}

function resolveIds(acc: Accounts, spec: FileSpec, path: string): { uid?: number; gid?: number } {
  return {
    uid: resolveId('owner', spec.owner, acc.uidByName, path),
    gid: resolveId('group', spec.group, acc.gidByName, path),
  };
}

/** Split a validate template on spaces; `%s` becomes the temp file's path inside its word. Never a shell. */
export function validateArgv(template: string, file: string): string[] {
  const words = template.trim().split(/ +/);
  if (!template.includes('%s')) words.push(file);
  return words.map((w) => w.split('%s').join(file));
}

function lstatType(hp: string): string | undefined {
  try {
    return typeOf(lstatSync(hp));
  } catch {
    return undefined;
  }
}

async function applyOne(ctx: ApplyContext, c: Change<FileChangeData>, acc: Accounts): Promise<void> {
  assertApplyContext(ctx);
  const data = c.data!;
  // reads only: every write, remove, chmod and chown below goes through the host doors
  // (core/hostfs.ts), which put the path under --root and refuse links on the way
  const hp = hostPath(ctx.settings, data.path);
  const spec = data.spec;
  if (data.op === 'delete') {
    try {
      removePath(ctx, data.path, { recursive: c.destructive === true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTEMPTY')
        throw new OpdError('refused', `${data.path} is a directory that is not empty`, {
          address: c.address,
          hint: 'mark what is in it absent too, or set allow_destroy: true to remove it with everything in it',
        });
      throw e;
    }
    return;
  }
  if (data.lost)
    throw new OpdError(
      'backend-failed',
      `cannot restore the previous content of ${data.path}: only its fingerprint is known (it was binary or above 16 MiB)`,
      {
        address: c.address,
        hint: 'restore the file from a backup; opd keeps the text of files it changes, not binary or huge ones',
      },
    );
  const ids = resolveIds(acc, spec, data.path);
  const type = spec.type ?? 'file';
  const existing = lstatType(hp);
  const mode = spec.mode !== undefined ? parseInt(spec.mode, 8) : undefined;
  if (data.op === 'meta') {
    setMeta(ctx, data.path, type, { ...ids, ...(type !== 'symlink' ? { mode } : {}) });
    return;
  }
  // a different kind of thing is in the way: a directory must go first (rename cannot replace it)
  if (existing === 'directory' && type !== 'directory') removePath(ctx, data.path, { recursive: true });
  if (type === 'directory') {
    if (existing !== undefined && existing !== 'directory') removePath(ctx, data.path);
    makeDir(ctx, data.path, { ...ids, mode });
    return;
  }
  if (type === 'symlink') {
    putSymlink(ctx, data.path, spec.target!, ids);
    return;
  }
  // regular file: keep the current mode/owner when the document does not name them
  let fileMode = mode ?? 0o644;
  let uid = ids.uid;
  let gid = ids.gid;
  if (existing === 'file') {
    const st = lstatSync(hp);
    if (spec.mode === undefined) fileMode = st.mode & 0o7777;
    uid ??= st.uid;
    gid ??= st.gid;
  }
  const template = spec.validate;
  const validate = template
    ? async (tmp: string) => {
        const argv = validateArgv(template, tmp);
        try {
          await runMutate(ctx, argv[0], argv.slice(1), { backend: `validate of ${data.path}` });
        } catch (e) {
          // a validator may echo the offending line: for secret content only its exit code is told
          const why =
            e instanceof ExecFailure
              ? secretContent(spec)
                ? `exit ${e.exitCode_}; its output is withheld because the content is secret`
                : e.stderr.trim().split('\n').slice(-3).join(' / ') || `exit ${e.exitCode_}`
              : (e as Error).message;
          throw new OpdError(
            'backend-failed',
            `validation of ${data.path} failed (${argv[0]}): ${why.split(tmp).join(data.path)}; the old file was left in place`,
            {
              hint: `fix the content so that \`${template}\` accepts it`,
              address: c.address,
            },
          );
        }
      }
    : undefined;
  if (isArtifact(spec.source)) {
    try {
      await installArtifact(ctx, data.path, spec.source, { mode: fileMode, uid, gid, validate });
    } catch (e) {
      const err = toOpdError(e);
      throw err.address ? err : new OpdError(err.kind, err.message, { address: c.address, hint: err.hint, cause: e });
    }
    return;
  }
  let data_: Buffer;
  if (spec.content !== undefined) data_ = Buffer.from(spec.content, 'utf8');
  else if (spec.source !== undefined) {
    try {
      data_ = readFileSync(spec.source as string);
    } catch (e) {
      throw new OpdError('backend-failed', `cannot read source ${spec.source}: ${(e as Error).message}`, {
        hint: 'source is a host path: make it exist and be readable',
      });
    }
  } else data_ = existing === 'file' ? readFileSync(hp) : Buffer.alloc(0);
  await putFile(ctx, data.path, data_, { mode: fileMode, uid, gid, validate });
}

const plugin: Plugin<FilesSection, FileChangeData> = {
  ...sectionSpec(manifest),

  normalize(section, ctx) {
    if (!isObj(section)) return section;
    // shorthand: files: { /etc/x.conf: {...} }
    const { out, entries: paths } = liftShorthand(section, 'files', 'paths', ctx, (k, v) =>
      k.startsWith('/') ? v : undefined,
    );
    if (isObj(section.paths) || Object.keys(paths).length) {
      for (const [p, spec] of Object.entries(paths)) {
        if (!isObj(spec)) continue;
        const s: Obj = { ...spec };
        if (s.type === undefined && s.state !== 'absent') s.type = s.target !== undefined ? 'symlink' : 'file';
        if (typeof s.mode === 'string' && /^[0-7]{3}$/.test(s.mode)) s.mode = '0' + s.mode;
        if (typeof s.owner === 'number') s.owner = String(s.owner);
        if (typeof s.group === 'number') s.group = String(s.group);
        // sha256sum prints lower case; upstream checksum files sometimes do not
        if (isObj(s.source) && typeof s.source.sha256 === 'string')
          s.source = { ...s.source, sha256: s.source.sha256.toLowerCase() };
        // content that holds a secret value is secret: read() carries the flag into the
        // pre-state, so a rollback (or a confirm revert) of the old content is secret too
        if (s.secret === undefined && typeof s.content === 'string' && holdsSecret(s.content)) s.secret = true;
        paths[p] = s;
      }
      // the content of a secret file is a secret value: masked in every output, line by line
      registerSecretValues(
        Object.values(paths).flatMap((s) =>
          isObj(s) && s.secret === true && typeof s.content === 'string' ? [s.content] : [],
        ),
      );
      out.paths = paths;
    }
    return out;
  },

  async read(ctx, desired) {
    const root = rootOf(ctx.settings);
    const named = desired.paths ?? {};
    const acc = readAccounts(ctx.settings);
    const paths: Record<string, FileState> = {};
    const goingAway = new Set(
      Object.entries(named)
        .filter(([, s]) => s.state === 'absent')
        .map(([p]) => p),
    );
    for (const [p, spec] of Object.entries(named)) {
      const cur = readOne(root, p, spec, acc, goingAway);
      if (cur) paths[p] = cur;
      // what a secret file holds now is as secret as what the document puts there
      if (spec.secret === true && typeof cur?.content === 'string') registerSecretValues([cur.content]);
    }
    return { paths };
  },

  plan: planFile,

  edges(desired) {
    const edges: Edge[] = [];
    const named = desired.paths ?? {};
    for (const [p, spec] of Object.entries(named)) {
      if (!isObj(spec)) continue;
      if (typeof spec.owner === 'string' && !NUMERIC.test(spec.owner))
        edges.push({ from: `files/paths/${p}`, to: `users/users/${spec.owner}`, kind: 'owner' });
      if (typeof spec.group === 'string' && !NUMERIC.test(spec.group))
        edges.push({ from: `files/paths/${p}`, to: `groups/groups/${spec.group}`, kind: 'group' });
      // a path depends on the directories above it that the document names: created after
      // them, and (the core reverses edges for deletes) removed before them
      for (let a = dirname(p); a !== '/' && a !== '.'; a = dirname(a))
        if (a in named) edges.push({ from: `files/paths/${p}`, to: `files/paths/${a}`, kind: 'parent', exact: true });
    }
    return edges;
  },

  async apply(ctx, changes) {
    const acc = readAccounts(ctx.settings);
    const out: ChangeResult[] = [];
    // removals first and deepest first (a directory after what is in it), then writes in plan order
    const depth = (c: Change<FileChangeData>) => c.data!.path.split('/').length;
    const dels = changes.filter((c) => c.data!.op === 'delete').sort((a, b) => depth(b) - depth(a));
    const rest = changes.filter((c) => c.data!.op !== 'delete');
    for (const c of [...dels, ...rest]) {
      // stopping (a first SIGINT/SIGTERM): the file in hand is finished, no other one is begun
      if (await stopRequested(ctx)) {
        out.push({ address: c.address, status: 'not-started' });
        continue;
      }
      try {
        await applyOne(ctx, c, acc);
        const ok: ChangeResult = { address: c.address, status: 'ok' };
        out.push(ok);
        await ctx.done(ok);
      } catch (e) {
        out.push({ address: c.address, status: 'failed', error: toOpdError(e) });
      }
    }
    return out;
  },

  // inotify on the directories holding the named paths: a hand edit, a removal, a chmod
  async watch(ctx, onDrift) {
    const root = rootOf(ctx.settings);
    const named = Object.keys(ctx.desired.paths ?? {});
    return watchPaths(
      named.map((p) => root + p),
      (host) => onDrift(`files/paths/${host.slice(root.length)}`),
      ctx.log,
    );
  },

  async doctor(ctx) {
    const root = rootOf(ctx.settings);
    return [{ name: 'files', ok: true, detail: root ? `paths are applied under ${root}` : 'paths are applied on /' }];
  },
};

export default plugin;
