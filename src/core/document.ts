/**
 * Load a state document (YAML or JSON) keeping source ranges, so that every problem can be
 * reported as file:line:col. Nothing here touches the host.
 */
import { readFileSync } from 'node:fs';
import type { Document, LineCounter, Node, YAMLError } from 'yaml';
import { yamlPackage } from './lazy-yaml.js';
import { EventLocator, fastYaml, jsonNodes, type FastResult } from './yaml-fast.js';
import { mark } from './profile.js';
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

/**
 * The most nodes (keys, values, sequence items, collections) a document may have: about 150,000
 * resources of the size of an OVS port. Beyond it the document is refused before any value is
 * built (exit 65), so that a huge document cannot hold the daemon's CPU or memory.
 */
export const MAX_NODES = 1_000_000;

/**
 * Above this size a document that the fast path cannot take is not re-read with the `yaml`
 * package (which takes about a second per MiB): its syntax errors come from the fast parser
 * (js-yaml's message, located), and anchors, aliases, tags and collections as keys are refused.
 */
export const EXACT_PARSE_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Up to this size a document with a duplicate key is checked again with the `yaml` package's own
 * (quadratic) check, so that its messages keep their order among other syntax errors exactly.
 */
const EXACT_ORDER_MAX_BYTES = 256 * 1024;

function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

function tooManyNodes(file: string, nodes?: number): OpdError {
  return new OpdError(
    'invalid-document',
    `${file}: document has ${nodes ? `${nodes} nodes` : 'too many nodes'}, more than the ${MAX_NODES} allowed (keys, values, list items and collections)`,
    {
      hint: 'split the state into several documents (opd apply each, or fleet fragments), or move large inline content out with `source:` paths',
    },
  );
}

function tooDeep(file: string): OpdError {
  return new OpdError('invalid-document', `${file}: document is nested deeper than ${MAX_DEPTH} levels`, {
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
}

/** How the last document was read (for --profile and the benchmarks). */
export let lastParse: { how: 'json' | 'yaml-fast' | 'yaml-exact'; nodes: number; ms: number } | undefined;

/** Parse document text; `file` is only used in messages. */
export function parseText(bytes: Buffer | string, file: string): LoadedDocument {
  const text = decodeDocument(bytes, file);
  const parsed = parseValue(text, file);
  return loadedDocument(file, text, parsed.raw, parsed.exact);
}

/** The document's text: size checked, UTF-8 checked (located), byte order mark removed. */
export function decodeDocument(bytes: Buffer | string, file: string): string {
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
  return text;
}

export interface ParsedValue {
  raw: unknown;
  nodes: number;
  how: 'json' | 'yaml-fast' | 'yaml-exact';
  /** the exact parse, when it was made (kept for source positions) */
  exact?: Exact;
}

/**
 * The document's value, by the fast path when it can (no source positions: they are read only
 * for a message, see loadedDocument), else by the exact parse; every problem of the text, the
 * node and depth limits. Pure: the daemon runs it in a worker thread (document-worker.ts).
 */
export function parseValue(text: string, file: string): ParsedValue {
  const t0 = process.uptime();
  let raw: unknown;
  let nodes = 0;
  let depth: number | undefined;
  let how: ParsedValue['how'] = 'yaml-fast';
  let exact: Exact | undefined;
  const big = text.length > EXACT_PARSE_MAX_BYTES;
  if (/\.json$/i.test(file)) {
    const parsed = checkJson(text, file);
    const n = jsonNodes(text, parsed);
    if (n.nodes > MAX_NODES) throw tooManyNodes(file, n.nodes);
    if (!n.duplicates) {
      raw = parsed;
      nodes = n.nodes;
      depth = n.depth;
      how = 'json';
    } else if (!big) exact = parseExact(text, file);
    else {
      // where the duplicate is: the fast YAML parser reads JSON too
      const fast = fastYaml(text, MAX_NODES, MAX_DEPTH + 2);
      throw fastProblem(text, file, fast.ok ? { ok: false, why: 'duplicate' } : fast);
    }
  } else {
    // what js-yaml reads otherwise than the yaml package (found by differential tests): a bare
    // carriage return (a line break to YAML) and a tab beside indentation; small documents with
    // either take the exact parse
    const exactOnly = !big && /\r(?!\n)|\t/.test(text);
    const fast = exactOnly ? undefined : fastYaml(text, MAX_NODES, MAX_DEPTH + 2);
    if (fast?.ok) {
      raw = fast.raw;
      nodes = fast.nodes;
      depth = fast.depth;
    } else if (!fast) exact = parseExact(text, file);
    else if (fast.why === 'too-many-nodes') throw tooManyNodes(file, fast.nodes);
    else if (!big) exact = parseExact(text, file);
    else throw fastProblem(text, file, fast);
  }
  if (exact) {
    raw = exact.raw;
    nodes = exact.nodes;
    how = 'yaml-exact';
  }
  if ((depth ?? depthOf(raw, MAX_DEPTH)) > MAX_DEPTH) throw tooDeep(file);
  lastParse = { how, nodes, ms: (process.uptime() - t0) * 1000 };
  mark(`parse (${how}, ${nodes} nodes)`);
  return { raw, nodes, how, exact };
}

/**
 * A loaded document around a value parsed from `text`. Source positions (`locate`) are read only
 * when a message needs them: with the exact parse (the yaml package, opd's positions ever since)
 * up to EXACT_PARSE_MAX_BYTES, from the fast parser's events above (the same line and column for
 * plain and quoted scalars; a block scalar at its `|` or `>`).
 */
export function loadedDocument(file: string, text: string, raw: unknown, exact?: Exact): LoadedDocument {
  const remaps = new Map<string, string>();
  let events: EventLocator | undefined;
  const locate = (pointer: string, atKey = false) => {
    const path = pointerToPath(sourcePointer(pointer, remaps));
    if (!exact && text.length > EXACT_PARSE_MAX_BYTES) {
      events ??= new EventLocator(text);
      return events.locate(path, atKey);
    }
    // source positions: from the exact parse, made now if the fast path read the document
    exact ??= parseExact(text, file);
    const { doc, lc } = exact;
    const { isMap, isScalar, isSeq } = yamlPackage();
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

/** A problem the fast parser found in a document too big for the exact parse. */
function fastProblem(text: string, file: string, fast: Extract<FastResult, { ok: false }>): OpdError {
  if (fast.why === 'too-deep') return tooDeep(file);
  const pos = fast.at === undefined ? undefined : lineCol(text, fast.at);
  const [message, fix] =
    fast.why === 'duplicate'
      ? [`duplicate key: ${JSON.stringify(fast.message)}`, 'each key may appear once; merge the two entries']
      : fast.why === 'syntax'
        ? [`YAML syntax error: ${fast.message}`, 'fix the syntax at this position']
        : [
            `${fast.message} in a document over ${EXACT_PARSE_MAX_BYTES / 1024 / 1024} MiB`,
            'write the values out (no anchors, aliases or tags), or split the document',
          ];
  return new OpdError('invalid-document', `${file} is not valid YAML/JSON`, {
    problems: [{ file, line: pos?.line, col: pos?.col, pointer: '', message, fix }],
  });
}

export interface Exact {
  doc: Document.Parsed;
  lc: LineCounter;
  raw: unknown;
  nodes: number;
}

/**
 * The exact parse (the `yaml` package, with source ranges): the document's problems with
 * file:line:col as opd has always reported them, and the positions of `locate`. Duplicate keys are
 * found here in linear time (the package's own check compares each key with every earlier key of
 * its map), at the position and in the order the package reports them.
 */
function parseExact(text: string, file: string): Exact {
  const { LineCounter, parseDocument } = yamlPackage();
  const lc = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, {
      lineCounter: lc,
      uniqueKeys: false,
      keepSourceTokens: true,
      prettyErrors: false,
      strict: true,
    });
  } catch (err) {
    throw new OpdError('invalid-document', `${file}: cannot parse: ${(err as Error).message}`, {
      hint: 'the document is nested too deeply or is not YAML/JSON',
    });
  }
  const { nodes, duplicates } = scanNodes(doc);
  if (nodes > MAX_NODES) throw tooManyNodes(file, nodes);
  // a duplicate in a small document: the package's own check, whose messages interleave with
  // other syntax errors in the order it meets them (quadratic, so only up to EXACT_ORDER_MAX_BYTES)
  if (duplicates.length && text.length <= EXACT_ORDER_MAX_BYTES) {
    const lc2 = new LineCounter();
    const again = parseDocument(text, { lineCounter: lc2, uniqueKeys: true, prettyErrors: false, strict: true });
    throw yamlProblems(file, again.errors, lc2);
  }
  const errors = [...doc.errors];
  for (const d of duplicates) {
    const i = errors.findIndex((e) => e.pos[0] > d);
    const e = { code: 'DUPLICATE_KEY', message: 'Map keys must be unique', pos: [d, d + 1] } as YAMLError;
    if (i === -1) errors.push(e);
    else errors.splice(i, 0, e);
  }
  if (errors.length) throw yamlProblems(file, errors, lc);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new OpdError('invalid-document', `${file}: ${(err as Error).message}`, {
      hint: 'YAML aliases are limited to 100 expansions; write the values out',
    });
  }
  return { doc, lc, raw, nodes };
}

/** The `yaml` package's errors as opd reports them: file:line:col, what, how to fix it. */
function yamlProblems(file: string, errors: YAMLError[], lc: LineCounter): OpdError {
  const problems: Problem[] = errors.map((e) => {
    const pos = e.linePos?.[0] ?? (e.pos ? lc.linePos(e.pos[0]) : undefined);
    const msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    return {
      file,
      line: pos?.line,
      col: pos?.col,
      pointer: '',
      message: e.code === 'DUPLICATE_KEY' ? `duplicate key: ${msg}` : `YAML syntax error: ${msg}`,
      fix:
        e.code === 'DUPLICATE_KEY'
          ? 'each key may appear once; merge the two entries'
          : 'fix the syntax at this position',
    };
  });
  return new OpdError('invalid-document', `${file} is not valid YAML/JSON`, { problems });
}

/**
 * Every node of the syntax tree counted, and the offsets at which the `yaml` package reports a
 * duplicate key (a key whose scalar value equals an earlier key's of the same map, by ===; its
 * `keyStart`: the end of the tokens before the key, else the end of the previous entry).
 */
function scanNodes(doc: Document.Parsed): { nodes: number; duplicates: number[] } {
  const { isMap, isScalar, visit } = yamlPackage();
  let nodes = 0;
  const duplicates: number[] = [];
  visit(doc, {
    Node(_key, node) {
      nodes++;
      if (!isMap(node)) return;
      const seen = new Set<unknown>();
      node.items.forEach((pair, i) => {
        const k = pair.key;
        if (!isScalar(k) || Number.isNaN(k.value)) return; // yaml compares other keys by identity
        if (!seen.has(k.value)) {
          seen.add(k.value);
          return;
        }
        const start = (pair as { srcToken?: { start?: { offset: number; source: string }[] } }).srcToken?.start;
        const last = start?.[start.length - 1];
        const prev = node.items[i - 1];
        const prevEnd = (prev?.value as Node | null)?.range?.[2] ?? (prev?.key as Node | null)?.range?.[2];
        duplicates.push(last ? last.offset + last.source.length : (prevEnd ?? k.range?.[0] ?? 0));
      });
    },
  });
  return { nodes, duplicates: duplicates.sort((a, b) => a - b) };
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
 * comments, single quotes) is an error with line and column. Its value is the document's (the
 * YAML parser only adds source positions, when a message needs them).
 */
function checkJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
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
  const bytes = await readDocument(file);
  mark('read document');
  return parseText(bytes, file === '-' ? '<stdin>' : file);
}

/** The bytes of a document file (`-`: standard input); a missing or unreadable file is a usage error. */
export async function readDocument(file: string): Promise<Buffer> {
  try {
    return file === '-' ? await readStdin() : readFileSync(file);
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
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
