/**
 * APT repositories (`packages.repositories`): one deb822 file per repository,
 * /etc/apt/sources.list.d/opd-<name>.sources, with its signing key embedded in Signed-By (apt ≥ 2.3
 * reads an armored key there), so a repository is one file that is written and removed whole.
 * A key comes inline, from a host file, or from a URL pinned by its fingerprint (computed here,
 * src/plugins/packages/openpgp.ts: no gpg on the host). A written repository is refreshed at
 * once, and only that source (`apt-get update` with it as the only source list, --error-on=any:
 * an index that cannot be fetched or verified fails the change, and the previous file is put
 * back). A removed repository takes its downloaded lists along (the files `apt-get indextargets`
 * names for it), so its packages are no longer candidates. Reads parse the file (no network).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { assertApplyContext, type ApplyContext, type NormalizeContext, type Obj } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { putFile, removePath } from '../../core/hostfs.js';
import { ExecFailure, runMutate, runRead } from '../../exec.js';
import { TUNABLES } from './manifest.js';
import { fetchBytes } from '../../host/artifact.js';
import { armor, dearmor, fingerprints, normalizeFingerprint } from './openpgp.js';
import type { Key, Repository } from './section.gen.js';

export const SOURCES_DIR = '/etc/apt/sources.list.d';
const LISTS_DIR = '/var/lib/apt/lists';
const ENV = { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', LANG: 'C', LANGUAGE: '' };

/** Where the plugin writes a repository. */
export function sourcesFile(name: string): string {
  return join(SOURCES_DIR, `opd-${name}.sources`);
}

/** The document's fingerprints as a sorted list of 40 upper-case hex digits. */
export function wantedFingerprints(key: Key): string[] | undefined {
  if (key.fingerprint === undefined) return undefined;
  const l = Array.isArray(key.fingerprint) ? key.fingerprint : [key.fingerprint];
  return l.map(normalizeFingerprint).sort();
}

/** normalize: fingerprints in one spelling; an inline key that does not parse, or has other fingerprints, is refused here. */
export function normalizeRepositories(repos: unknown, ctx: NormalizeContext): unknown {
  if (!isObj(repos)) return repos;
  const out: Obj = {};
  for (const [name, spec] of Object.entries(repos)) {
    if (!isObj(spec) || !isObj(spec.key)) {
      out[name] = spec;
      continue;
    }
    const key: Obj = { ...spec.key };
    const at = `/plugins/packages/repositories/${name}/key`;
    if (typeof key.fingerprint === 'string') key.fingerprint = normalizeFingerprint(key.fingerprint);
    else if (Array.isArray(key.fingerprint))
      key.fingerprint = key.fingerprint.map((f) => (typeof f === 'string' ? normalizeFingerprint(f) : f)).sort();
    if (typeof key.inline === 'string' && key.inline.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
      try {
        const fps = fingerprints(dearmor(key.inline, `repository ${name}: the inline key`), `repository ${name}`);
        const want = wantedFingerprints(key as Key);
        if (want && fps.slice().sort().join() !== want.join())
          ctx.refuse(
            `${at}/fingerprint`,
            `repository ${name}: the inline key's fingerprint is ${fps.join(', ')}, the document names ${want.join(', ')}`,
            'copy the key again from its publisher, or correct the fingerprint',
          );
      } catch (e) {
        ctx.refuse(`${at}/inline`, (e as Error).message, (e as OpdError).hint);
      }
    }
    out[name] = { ...spec, key };
  }
  return out;
}

/** Fields of the first stanza of a deb822 file (continuation lines joined with \n). */
export function parseDeb822(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line.trim() === '') {
      if (Object.keys(out).length) break;
      continue;
    }
    if (/^[ \t]/.test(line) && last) {
      const v = line.slice(1);
      out[last] += (out[last] ? '\n' : '') + (v === '.' ? '' : v);
      continue;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    last = m[1].toLowerCase();
    out[last] = m[2].trim();
  }
  return out;
}

const words = (v: string | undefined) => (v ? v.split(/\s+/).filter(Boolean) : undefined);

/** The key material (binary packets) of a desired key that needs no download. */
function localKey(name: string, key: Key): Buffer | undefined {
  if (key.inline !== undefined) return dearmor(key.inline, `repository ${name}: the inline key`);
  if (key.file !== undefined) {
    let raw: Buffer;
    try {
      raw = readFileSync(key.file);
    } catch (e) {
      throw new OpdError(
        'backend-failed',
        `repository ${name}: cannot read the key file ${key.file}: ${(e as Error).message}`,
        {
          hint: 'key.file is a host path: make it exist and be readable',
        },
      );
    }
    return dearmor(raw, `repository ${name}: ${key.file}`);
  }
  return undefined;
}

/** A repository as read from its file, in the section's shape (the key reads as the document's when it is the same key). */
export function readRepository(name: string, want: Repository): Repository | undefined {
  const path = sourcesFile(name);
  if (!existsSync(path)) return undefined;
  const f = parseDeb822(readFileSync(path, 'utf8'));
  const cur: Repository = {};
  const types = words(f.types) as Repository['types'];
  if (types) cur.types = types;
  const uris = words(f.uris);
  if (uris) cur.uris = uris;
  const suites = words(f.suites);
  if (suites) cur.suites = suites;
  const components = words(f.components);
  if (components) cur.components = components;
  const arch = words(f.architectures);
  if (arch) cur.architectures = arch;
  if (want.key === undefined) return cur;
  let have: Buffer | undefined;
  let fps: string[] = [];
  try {
    have = f['signed-by'] ? dearmor(f['signed-by'], `${path}: Signed-By`) : undefined;
    fps = have ? fingerprints(have, `${path}: Signed-By`).sort() : [];
  } catch {
    have = undefined; // a damaged or foreign Signed-By (a keyring path) is not the document's key
  }
  let same: boolean;
  if (want.key.url !== undefined) same = !!have && fps.join() === (wantedFingerprints(want.key) ?? []).join();
  else {
    const mine = localKey(name, want.key);
    same = !!have && !!mine && have.equals(mine);
  }
  cur.key = same ? want.key : { fingerprint: fps.length ? fps : ['none'] };
  return cur;
}

/** The key's binary packets for writing: fetched (url) or read, and checked against the document's fingerprints. */
async function keyMaterial(ctx: ApplyContext, name: string, key: Key): Promise<Buffer> {
  const bin =
    key.url !== undefined
      ? dearmor(await fetchBytes(ctx, key.url), `repository ${name}: ${key.url}`)
      : localKey(name, key)!;
  const want = wantedFingerprints(key);
  if (want) {
    const got = fingerprints(bin, `repository ${name}`).sort();
    if (got.join() !== want.join())
      throw new OpdError(
        'backend-failed',
        `repository ${name}: the key from ${key.url ?? key.file ?? 'the document'} has fingerprint ${got.join(', ')}, the document expects ${want.join(', ')}; the repository was not written`,
        { hint: 'check the key URL and the fingerprint its publisher gives (gpg --show-keys KEYFILE)' },
      );
  }
  return bin;
}

/** The deb822 text of a repository (the key armored and embedded in Signed-By). */
export function renderRepository(name: string, spec: Repository, key: Buffer): string {
  const lines = [
    `# opd: packages/repositories/${name} (written by opd, which overwrites changes made here)`,
    `Types: ${(spec.types ?? ['deb']).join(' ')}`,
    `URIs: ${(spec.uris ?? []).join(' ')}`,
    `Suites: ${(spec.suites ?? []).join(' ')}`,
  ];
  if (spec.components?.length) lines.push(`Components: ${spec.components.join(' ')}`);
  if (spec.architectures?.length) lines.push(`Architectures: ${spec.architectures.join(' ')}`);
  lines.push(
    'Signed-By:',
    ...armor(key)
      .split('\n')
      .map((l) => (l === '' ? ' .' : ` ${l}`)),
  );
  return lines.join('\n') + '\n';
}

function aptError(what: string, err: unknown): OpdError {
  if (err instanceof ExecFailure) {
    const lines = err.stderr
      .split('\n')
      .filter((l) => /^(E|W):|NO_PUBKEY|not signed|signatures/.test(l))
      .slice(0, 4);
    return new OpdError('backend-failed', `${what}: ${lines.join(' / ') || err.message}`, {
      hint: 'check the repository URI and suite, and that the key is the one that signs its Release file',
    });
  }
  return err instanceof OpdError ? err : new OpdError('backend-failed', `${what}: ${String(err)}`);
}

/** `apt-get update` of one source file only (the others' lists are left alone). */
async function updateOnly(ctx: ApplyContext, file: string): Promise<void> {
  await runMutate(
    ctx,
    'apt-get',
    [
      'update',
      '-q',
      '--error-on=any',
      '-o',
      `Dir::Etc::sourcelist=${file}`,
      '-o',
      'Dir::Etc::sourceparts=-',
      '-o',
      'APT::Get::List-Cleanup=0',
    ],
    { env: ENV, timeout: TUNABLES.packageTxMs, backend: 'packages (apt-get update)', installHint: 'install apt' },
  );
}

/** Write (or rewrite) a repository and refresh it; on a failed refresh the previous file (or none) is put back. */
export async function writeRepository(ctx: ApplyContext, name: string, spec: Repository): Promise<string> {
  const path = sourcesFile(name);
  const key = await keyMaterial(ctx, name, spec.key!);
  const text = renderRepository(name, spec, key);
  const before = existsSync(path) ? readFileSync(path) : undefined;
  await putFile(ctx, path, text, { mode: 0o644 });
  try {
    await updateOnly(ctx, path);
  } catch (err) {
    if (before) await putFile(ctx, path, before, { mode: 0o644 });
    else removePath(ctx, path);
    throw aptError(`repository ${name}: apt-get update of ${path} failed, the previous state was put back`, err);
  }
  return `wrote ${path}; apt-get update of it`;
}

/** The list files apt downloaded for one source file (its indexes and Release files). */
async function listFiles(file: string): Promise<string[]> {
  const r = await runRead(
    'apt-get',
    [
      'indextargets',
      '-o',
      `Dir::Etc::sourcelist=${file}`,
      '-o',
      'Dir::Etc::sourceparts=-',
      '--format',
      '$(FILENAME)\t$(URI)\t$(BASE_URI)',
    ],
    { env: ENV, okCodes: [0, 100], backend: 'packages (apt-get indextargets)' },
  );
  const out = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const [filename, uri, base] = line.split('\t');
    if (!filename || !uri || !base || dirname(filename) !== LISTS_DIR || !uri.startsWith(base)) continue;
    out.add(filename);
    // the Release files sit beside the indexes: the index's name without its part below the base URI
    const fn = basename(filename).replace(/\.(lz4|gz|xz|zst|bz2|lzma)$/, '');
    const rest = uri.slice(base.length).replace(/\//g, '_');
    if (!fn.endsWith(rest)) continue;
    const prefix = fn.slice(0, fn.length - rest.length);
    for (const meta of ['InRelease', 'Release', 'Release.gpg']) out.add(join(LISTS_DIR, prefix + meta));
  }
  return [...out].sort();
}

/** Remove a repository's file and the lists apt downloaded for it. */
export async function removeRepository(ctx: ApplyContext, name: string): Promise<string> {
  assertApplyContext(ctx);
  const path = sourcesFile(name);
  if (!existsSync(path)) return 'already gone';
  const lists = await listFiles(path);
  removePath(ctx, path);
  let n = 0;
  for (const f of lists)
    if (existsSync(f)) {
      removePath(ctx, f);
      n++;
    }
  return `removed ${path} and ${n} list file(s)`;
}
