/**
 * Load a state document (YAML or JSON) keeping source ranges, so that every problem can be
 * reported as file:line:col. Nothing here touches the host.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document, type Node } from 'yaml';
import { OpdError, type Problem } from './errors.js';
import type { Obj } from './plugin.js';

export const MAX_DOCUMENT_BYTES = 32 * 1024 * 1024;
export const MAX_DEPTH = 64;

export interface StateDocument {
  version: number;
  plugins: Record<string, Obj>;
}

export interface LoadedDocument {
  file: string;
  /** The document as written (after YAML parsing). */
  raw: unknown;
  /** sha256 of the source bytes. */
  text: string;
  /**
   * Maps a JSON pointer of the (normalized) document to {line, col} in the source: the value's
   * position, or with `atKey` the position of the last key (for unknown keys and bad names).
   */
  locate(pointer: string, atKey?: boolean): { line: number; col: number } | undefined;
  /** Normalized pointer prefix → source pointer prefix (filled by normalization). */
  remaps: Map<string, string>;
  /** Accepted but not acted on (filled by normalization; located by `locateProblems`). */
  warnings: Problem[];
  /** Foreign forms refused by name (filled by normalization; reported by validation). */
  refusals: Problem[];
}

/** Fill in file:line:col of problems whose pointer is known but position is not. */
export function locateProblems(loaded: LoadedDocument, problems: Problem[]): Problem[] {
  return problems.map((p) => {
    if (p.line !== undefined) return p;
    const pos = loaded.locate(p.pointer);
    return { ...p, file: loaded.file, line: pos?.line, col: pos?.col };
  });
}

export function pointerToPath(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function pathToPointer(path: (string | number)[]): string {
  return path.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

function depthOf(v: unknown, limit: number): number {
  // iterative, so a hostile document cannot overflow the stack here
  let max = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (d > max) max = d;
    if (max > limit) return max;
    if (x && typeof x === 'object') for (const c of Object.values(x as object)) stack.push([c, d + 1]);
  }
  return max;
}

/** Parse document text; `file` is only used in messages. */
export function parseText(bytes: Buffer | string, file: string): LoadedDocument {
  const problems: Problem[] = [];
  let text: string;
  if (typeof bytes === 'string') text = bytes;
  else {
    if (bytes.length > MAX_DOCUMENT_BYTES)
      throw new OpdError(
        'invalid-document',
        `${file}: document is ${bytes.length} bytes, more than the ${MAX_DOCUMENT_BYTES} allowed`,
        {
          hint: 'split large file contents out and use `source:` paths instead of inline content',
        },
      );
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      const bad = findBadUtf8(bytes);
      const before = bytes.subarray(0, bad).toString('latin1');
      const line = before.split('\n').length;
      const col = bad - before.lastIndexOf('\n');
      throw new OpdError('invalid-document', `${file} is not valid UTF-8`, {
        problems: [
          {
            file,
            line,
            col,
            pointer: '',
            message: `invalid UTF-8 byte 0x${bytes[bad]?.toString(16)} at byte ${bad}`,
            fix: 'save the file as UTF-8',
          },
        ],
      });
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length > MAX_DOCUMENT_BYTES)
    throw new OpdError('invalid-document', `${file}: document is larger than ${MAX_DOCUMENT_BYTES} bytes`);
  if (/\.json$/i.test(file)) checkJson(text, file);
  const lc = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true });
  } catch (err) {
    throw new OpdError('invalid-document', `${file}: cannot parse: ${(err as Error).message}`, {
      hint: 'the document is nested too deeply or is not YAML/JSON',
    });
  }
  for (const e of [...doc.errors]) {
    const pos = e.linePos?.[0] ?? (e.pos ? lc.linePos(e.pos[0]) : undefined);
    const msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    problems.push({
      file,
      line: pos?.line,
      col: pos?.col,
      pointer: '',
      message: e.code === 'DUPLICATE_KEY' ? `duplicate key: ${msg}` : `YAML syntax error: ${msg}`,
      fix:
        e.code === 'DUPLICATE_KEY'
          ? 'each key may appear once; merge the two entries'
          : 'fix the syntax at this position',
    });
  }
  if (problems.length) throw new OpdError('invalid-document', `${file} is not valid YAML/JSON`, { problems });
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new OpdError('invalid-document', `${file}: ${(err as Error).message}`, {
      hint: 'YAML aliases are limited to 100 expansions; write the values out',
    });
  }
  if (depthOf(raw, MAX_DEPTH) > MAX_DEPTH)
    throw new OpdError('invalid-document', `${file}: document is nested deeper than ${MAX_DEPTH} levels`, {
      problems: [
        {
          file,
          line: 1,
          col: 1,
          pointer: '',
          message: 'nesting too deep',
          fix: 'no opd document needs this much nesting',
        },
      ],
    });
  const remaps = new Map<string, string>();
  const locate = (pointer: string, atKey = false) => {
    const src = sourcePointer(pointer, remaps);
    const path = pointerToPath(src);
    let node: unknown = doc.contents;
    let best: number | undefined = node && (node as Node).range ? (node as Node).range![0] : undefined;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
        if (!pair) break;
        const k = pair.key as Node;
        if (k?.range) best = k.range[0];
        node = pair.value;
        const v = node as Node | null;
        if (last && !atKey && v?.range && !isMap(v) && !isSeq(v)) best = v.range[0];
      } else if (isSeq(node)) {
        const item = node.items[Number(seg)] as Node | undefined;
        if (!item) break;
        if (item.range) best = item.range[0];
        node = item;
      } else break;
    }
    if (best === undefined) return undefined;
    const p = lc.linePos(best);
    return { line: p.line, col: p.col };
  };
  return { file, raw, text, locate, remaps, warnings: [], refusals: [] };
}

function sourcePointer(pointer: string, remaps: Map<string, string>): string {
  // nested normalizations (ports inside bridges) remap in steps: apply until nothing matches
  let cur = pointer;
  for (let round = 0; round < 16; round++) {
    let best = '';
    for (const k of remaps.keys()) if ((cur === k || cur.startsWith(k + '/')) && k.length > best.length) best = k;
    if (!best || remaps.get(best) === best) return cur;
    cur = remaps.get(best)! + cur.slice(best.length);
  }
  return cur;
}

/**
 * A `.json` file is JSON, as op-dbus reads it: what YAML would forgive (a trailing comma,
 * comments, single quotes) is an error with line and column. The YAML parser then only adds
 * source positions.
 */
function checkJson(text: string, file: string): void {
  try {
    JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const m = /at position (\d+)/.exec(msg);
    const pos = m ? Number(m[1]) : text.length;
    const before = text.slice(0, pos);
    const line = before.split('\n').length;
    const col = pos - before.lastIndexOf('\n');
    const what = msg.replace(/ in JSON at position \d+.*$/, '').replace(/^JSON\.parse: /, '');
    throw new OpdError('invalid-document', `${file} is not valid JSON`, {
      problems: [
        {
          file,
          line,
          col,
          pointer: '',
          message: `JSON syntax error: ${what}`,
          fix: 'a .json document is read as strict JSON (no trailing commas or comments); fix it here, or write YAML in a .yaml file',
        },
      ],
    });
  }
}

/** Offset of the first byte that breaks UTF-8 (linear scan). */
function findBadUtf8(b: Buffer): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    const n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) if (i + k >= b.length || (b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return 0;
}

export async function loadDocument(file: string): Promise<LoadedDocument> {
  let bytes: Buffer;
  try {
    bytes = file === '-' ? await readStdin() : await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new OpdError('usage', `${file}: no such file`, {
        hint: 'give the path of a state document (YAML or JSON)',
      });
    if (code === 'EISDIR')
      throw new OpdError('usage', `${file} is a directory`, { hint: 'give the path of a state document file' });
    if (code === 'EACCES')
      throw new OpdError('permission', `${file}: permission denied`, {
        hint: 'make the document readable for this user',
      });
    throw err;
  }
  return parseText(bytes, file === '-' ? '<stdin>' : file);
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
