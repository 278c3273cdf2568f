/**
 * A worker thread's body: parse one document's text (document.ts parseValue) and post its value,
 * or the OpdError that refused it, back (document-worker.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseValue } from './document.js';
import { OpdError } from './errors.js';

const { text, file } = workerData as { text: string; file: string };
try {
  parentPort!.postMessage({ raw: parseValue(text, file).raw });
} catch (err) {
  const e =
    err instanceof OpdError
      ? err
      : new OpdError('bug', `parsing ${file} failed: ${(err as Error).message ?? String(err)}`);
  parentPort!.postMessage({
    error: { kind: e.kind, message: e.message, hint: e.hint, problems: e.problems, address: e.address },
  });
}
