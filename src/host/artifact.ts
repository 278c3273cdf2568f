/**
 * Artifacts: a file that comes from a URL (http/https) or a host path, pinned by its sha256.
 * Shared by the files plugin (a binary such as Firecracker put in place) and the packages plugin
 * (a local .deb). The download streams into a temp file beside the target while it is hashed;
 * only a whole file whose hash is the document's is renamed into place, so a wrong checksum or a
 * broken transfer never leaves a partial or unverified file. Reads never fetch: they hash what is
 * on disk, so an artifact is fetched once and not again while the file's hash matches.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import type { ApplyContext } from '../core/plugin.js';
import { OpdError } from '../core/errors.js';
import { isObj } from '../core/diff.js';
import { TUNABLES } from '../core/tunables.js';
import { putFileFrom, type WriteOptions } from '../core/hostfs.js';

/** An artifact as the document names it (common.schema.json#/$defs/artifact). */
export interface Artifact {
  url?: string;
  path?: string;
  sha256: string;
}

/** An artifact spec (a URL or a path, and a sha256), as opposed to a fingerprint read from the host. */
export function isArtifact(v: unknown): v is Artifact {
  return isObj(v) && typeof v.sha256 === 'string' && (typeof v.url === 'string' || typeof v.path === 'string');
}

/** Where it comes from, for messages. */
export function origin(a: Artifact): string {
  return a.url ?? a.path ?? '(nowhere)';
}

/** The sha256 of a host file (read in chunks: artifacts can be large), undefined when it is missing. */
export function sha256OfFile(p: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(p, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null))
      h.update(buf.subarray(0, n));
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

function mismatch(a: Artifact, got: string, target: string): OpdError {
  return new OpdError(
    'backend-failed',
    `${target}: the sha256 of ${origin(a)} is ${got}, the document expects ${a.sha256.toLowerCase()}; nothing was put in place`,
    {
      hint: 'check the URL or path and the checksum (sha256sum FILE); an artifact that changed upstream needs its new sha256 in the document',
    },
  );
}

/** The artifact's bytes, chunk by chunk: an HTTP(S) download (the run's signal and TUNABLES.fetchMs stop it) or a host file. */
async function* chunks(ctx: ApplyContext, a: Artifact): AsyncGenerator<Uint8Array> {
  if (a.path !== undefined) {
    try {
      for await (const c of createReadStream(a.path)) yield c as Buffer;
    } catch (e) {
      throw new OpdError('backend-failed', `cannot read ${a.path}: ${(e as Error).message}`, {
        hint: 'the artifact path is a host path (not under --root): make it exist and be readable',
      });
    }
    return;
  }
  const url = a.url!;
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(TUNABLES.fetchMs)]);
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (e) {
    if (ctx.signal.aborted) throw new OpdError('backend-failed', `GET ${url}: stopped (${String(ctx.signal.reason)})`);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new OpdError('backend-busy', `GET ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`, {
      hint: 'check that the host reaches the URL (DNS, proxy, firewall); opd retries a failed download',
    });
  }
  if (!res.ok || !res.body) {
    // a server error may pass; a missing file will not
    throw new OpdError(
      res.status >= 500 ? 'backend-busy' : 'backend-failed',
      `GET ${url}: HTTP ${res.status} ${res.statusText}`,
      {
        hint: res.status === 404 ? 'the URL names no file: check the version in it' : 'check the URL and the server',
      },
    );
  }
  try {
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) yield c;
  } catch (e) {
    throw new OpdError('backend-busy', `GET ${url}: the transfer broke (${(e as Error).message})`, {
      hint: 'opd retries; nothing was put in place',
    });
  }
}

/**
 * Put an artifact at `target` (a path of the document: under --root, through hostfs's door) atomically: streamed into a temp file beside it while
 * hashed, compared with the document's sha256 (a mismatch fails with both hashes and leaves the
 * target as it was), then mode/owner, fsync, the optional validation and the rename.
 */
export async function installArtifact(
  ctx: ApplyContext,
  target: string,
  a: Artifact,
  opts: WriteOptions = {},
): Promise<void> {
  const want = a.sha256.toLowerCase();
  await putFileFrom(
    ctx,
    target,
    async (write) => {
      const h = createHash('sha256');
      for await (const c of chunks(ctx, a)) {
        h.update(c);
        write(c);
      }
      const got = h.digest('hex');
      if (got !== want) throw mismatch(a, got, target);
    },
    opts,
  );
}

/** A small download kept in memory (a repository key): at most `max` bytes, the run's signal and TUNABLES.fetchMs stop it. */
export async function fetchBytes(ctx: ApplyContext, url: string, max = 1024 * 1024): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of chunks(ctx, { url, sha256: '' })) {
    n += c.length;
    if (n > max)
      throw new OpdError('backend-failed', `GET ${url}: more than ${max} bytes`, {
        hint: 'the URL does not name what the document says it does',
      });
    parts.push(c);
  }
  return Buffer.concat(parts);
}
