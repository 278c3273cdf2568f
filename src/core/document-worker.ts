/**
 * Loading a document off the main thread, for the daemon: the parse runs in a worker thread, so
 * that a big document (up to 32 MB, a million nodes) does not hold the event loop, where the
 * watchdog's ping, the D-Bus API and the signals are served. The main thread reads and decodes
 * the file, and builds the loaded document around the value the worker sends back (source
 * positions are read later, only for a message).
 */
import { Worker } from 'node:worker_threads';
import { decodeDocument, loadedDocument, readDocument, type LoadedDocument } from './document.js';
import { OpdError, type ErrorKind, type Problem } from './errors.js';

/** How much memory the parse of one document may take (a document of a million nodes takes ~1 GiB). */
const WORKER_HEAP_MB = 3072;

export async function loadDocumentOffThread(file: string): Promise<LoadedDocument> {
  const text = decodeDocument(await readDocument(file), file);
  const raw = await parseInWorker(text, file);
  return loadedDocument(file, text, raw);
}

/** The document's value, parsed in a worker thread (the same checks and messages as parseText). */
export function parseInWorker(text: string, file: string): Promise<unknown> {
  // the bundle (dist/bundle/opd.cjs) has its worker beside it; the tsc build dist/core/parse-worker.js
  const script = new URL(
    import.meta.url.endsWith('.cjs') ? './parse-worker.cjs' : './parse-worker.js',
    import.meta.url,
  );
  return new Promise((resolve, reject) => {
    const w = new Worker(script, {
      workerData: { text, file },
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
      stdout: false,
      stderr: false,
    });
    let settled = false;
    w.once(
      'message',
      (m: {
        raw?: unknown;
        error?: { kind: ErrorKind; message: string; hint?: string; problems?: Problem[]; address?: string };
      }) => {
        settled = true;
        if (m.error) reject(new OpdError(m.error.kind, m.error.message, m.error));
        else resolve(m.raw);
        void w.terminate();
      },
    );
    w.once('error', (err: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      reject(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new OpdError('invalid-document', `${file}: the document needs more than ${WORKER_HEAP_MB} MiB to parse`, {
              hint: 'split the state into several documents, or move large inline content out with `source:` paths',
            })
          : new OpdError('bug', `parsing ${file} in a worker thread failed: ${err.message}`),
      );
    });
    w.once('exit', (code) => {
      if (!settled) {
        settled = true;
        reject(new OpdError('bug', `the worker thread parsing ${file} exited with code ${code}`));
      }
    });
  });
}
