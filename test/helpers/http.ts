/**
 * A loopback HTTP server for artifact tests (the only network a test may use): serves files from
 * a map or a directory, counts the requests per path (so a test can assert that opd did not fetch
 * again), and can break a transfer half-way (`broken` paths: half the body, then the socket is
 * destroyed).
 */
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, normalize } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface ArtifactServer {
  url: string;
  /** requests per path, e.g. hits['/firecracker'] */
  hits: Record<string, number>;
  /** path → body (takes precedence over the directory) */
  files: Map<string, Buffer>;
  /** paths whose transfer breaks after half the body */
  broken: Set<string>;
  close(): Promise<void>;
}

export async function serveArtifacts(dir?: string): Promise<ArtifactServer> {
  const hits: Record<string, number> = {};
  const files = new Map<string, Buffer>();
  const broken = new Set<string>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hits[path] = (hits[path] ?? 0) + 1;
    let body = files.get(path);
    if (!body && dir) {
      const p = join(dir, normalize(path));
      if (p.startsWith(dir) && existsSync(p) && statSync(p).isFile()) body = readFileSync(p);
    }
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    if (broken.has(path)) {
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    files,
    broken,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
