/**
 * A small typed OVSDB client (RFC 7047: the OVSDB management protocol, JSON-RPC 1.0 over a
 * stream socket). It speaks to ovsdb-server directly over node:net, so that reading or writing
 * thousands of rows is one request instead of one process per command.
 *
 *   const c = await OvsdbClient.connect('unix:/run/openvswitch/db.sock');
 *   const [bridges] = await c.transact('Open_vSwitch', [{ op: 'select', table: 'Bridge', where: [], columns: ['name'] }]);
 *   const stop = await c.monitor('Open_vSwitch', { Bridge: { columns: ['name'] } }, (u) => …);
 *
 * Messages are JSON texts back to back on the stream (no delimiter): a small scanner finds where
 * each one ends. The server's `echo` requests (keep-alive) are answered. An idle connection is
 * unref'd, so it never keeps a process alive; a pending request or a monitor keeps it referenced.
 * Every error is an OpdError: `backend-unavailable` when the server cannot be reached or the
 * connection is lost, `backend-failed` for a refused request or operation.
 *
 * Every request has a time limit (src/core/tunables.ts) and may take an AbortSignal (the run's,
 * ApplyContext.signal): when either fires the request rejects at once (`backend-busy` when its
 * time was up, `backend-failed` when the run was stopped: src/core/errors.ts abortedError), its
 * id is forgotten (a late answer is dropped), and the server is told to stop waiting: a
 * transact gets RFC 7047 §4.1.4 `cancel` (a transaction blocked in a `wait` then never commits;
 * one already committed stays committed, as a killed process's work does, and verify reads it),
 * a monitor gets `monitor_cancel`.
 */
import { connect, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { OpdError, abortedError } from '../core/errors.js';
import { TUNABLES } from '../core/tunables.js';

/** An atomic value: string, integer, real, boolean, or a row reference. */
export type Atom = string | number | boolean | ['uuid', string] | ['named-uuid', string];
/** A column value: an atom, a set or a map (RFC 7047 §5.1). */
export type Value = Atom | ['set', Atom[]] | ['map', [Atom, Atom][]];
export type Row = Record<string, Value>;
export type Condition = [
  column: string,
  fn: '==' | '!=' | '<' | '<=' | '>' | '>=' | 'includes' | 'excludes',
  value: Value,
];
export type Mutation = [column: string, mutator: '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete', value: Value];

export type Operation =
  | { op: 'select'; table: string; where: Condition[]; columns?: string[] }
  | { op: 'insert'; table: string; row: Row; 'uuid-name'?: string }
  | { op: 'update'; table: string; where: Condition[]; row: Row }
  | { op: 'mutate'; table: string; where: Condition[]; mutations: Mutation[] }
  | { op: 'delete'; table: string; where: Condition[] }
  | {
      op: 'wait';
      table: string;
      where: Condition[];
      columns: string[];
      until: '==' | '!=';
      rows: Row[];
      timeout?: number;
    }
  | { op: 'commit'; durable: boolean }
  | { op: 'abort' }
  | { op: 'comment'; comment: string }
  | { op: 'assert'; lock: string };

/** The result of one operation: rows (select), uuid (insert), count (update, mutate, delete). */
export interface OpResult {
  rows?: Row[];
  uuid?: ['uuid', string];
  count?: number;
  error?: string;
  details?: string;
}

/** What to monitor in one table (RFC 7047 §4.1.5). */
export interface MonitorRequest {
  columns?: string[];
  select?: { initial?: boolean; insert?: boolean; delete?: boolean; modify?: boolean };
}

/** table → row uuid → {old?, new?} */
export type TableUpdates = Record<string, Record<string, { old?: Row; new?: Row }>>;

export interface Monitor {
  /** The rows that matched when the monitor started (select.initial). */
  readonly initial: TableUpdates;
  cancel(): Promise<void>;
}

export interface ConnectOptions {
  /** Give up connecting after this many milliseconds (default TUNABLES.ovsdbConnectMs). */
  timeoutMs?: number;
}

export interface RequestOptions {
  /** Give up waiting for the answer after this many milliseconds (default TUNABLES.ovsdbRequestMs; 0: never). */
  timeoutMs?: number;
  /** Stop waiting when it fires (the run's signal, ApplyContext.signal). */
  signal?: AbortSignal;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  /** Stops the time limit and the signal's listener. */
  done?: () => void;
  method: string;
}

/** unix:PATH or tcp:HOST:PORT (the forms ovs-vsctl's --db takes; a bare path is a unix socket). */
export function parseUrl(url: string): { path: string } | { host: string; port: number } {
  if (url.startsWith('unix:')) return { path: url.slice(5) };
  if (url.startsWith('/')) return { path: url };
  const m = /^tcp:(\[[^\]]+\]|[^:]+):(\d+)$/.exec(url);
  if (m) return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  throw new OpdError('usage', `unsupported OVSDB address ${url}`, {
    hint: 'use unix:/path/to/db.sock or tcp:HOST:PORT',
  });
}

/**
 * Splits a stream of back-to-back JSON texts into whole texts. Strings (with escapes) are
 * skipped; a text ends when the outermost object or array closes. Linear in the input: one
 * pass of charCodeAt over each chunk (5 MB of a 10,000-port read in ~10 ms), chunks joined
 * only when a text ends.
 */
export class JsonSplitter {
  private parts: string[] = [];
  private depth = 0;
  private inString = false;
  private escape = false;

  constructor(private readonly onText: (text: string) => void) {}

  push(chunk: string): void {
    let start = 0;
    let depth = this.depth;
    let inString = this.inString;
    let escape = this.escape;
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const c = chunk.charCodeAt(i);
      if (inString) {
        if (escape) escape = false;
        else if (c === 92 /* \ */) escape = true;
        else if (c === 34 /* " */) inString = false;
        continue;
      }
      if (depth === 0) {
        if (c === 123 /* { */ || c === 91 /* [ */) {
          start = i;
          depth = 1;
        } else if (c !== 32 && c !== 10 && c !== 13 && c !== 9)
          throw new Error(`unexpected text ${JSON.stringify(chunk.slice(i, i + 20))} between JSON texts`);
        continue;
      }
      if (c === 34) inString = true;
      else if (c === 123 || c === 91) depth++;
      else if ((c === 125 /* } */ || c === 93) /* ] */ && --depth === 0) {
        this.parts.push(chunk.slice(start, i + 1));
        const text = this.parts.join('');
        this.parts = [];
        start = i + 1;
        this.onText(text);
      }
    }
    this.depth = depth;
    this.inString = inString;
    this.escape = escape;
    if (depth > 0) this.parts.push(chunk.slice(start));
  }
}

/**
 * The framing of a connection: ovsdb-server writes each message as one JSON text, so a chunk that
 * ends a message is usually the end of what has arrived. When a chunk ends with `}` or `]`,
 * JSON.parse (native, several times faster than scanning in JavaScript) reads what is buffered:
 * one whole message, or messages glued together (split where JSON.parse says the first one ends),
 * or an unfinished one (an error at the very end of the text: kept for the next chunk). Anything else, and every chunk after it, goes
 * through the exact JsonSplitter.
 */
type Message = { id?: unknown; method?: string; params?: unknown[]; result?: unknown; error?: unknown };

export class JsonStream {
  private buf: string[] = [];
  private slow: JsonSplitter | undefined;
  private scheduled = false;

  /**
   * `onError`: given, the stream reads once per turn of the event loop (all the chunks the socket
   * had ready, up to 2 MB, then one JSON.parse: a 5 MB answer is not re-read at each 64 KB chunk
   * that happens to end with `}`) and reports malformed input there; without it, at each chunk,
   * throwing.
   */
  constructor(
    private readonly onValue: (value: unknown) => void,
    private readonly onError?: (err: Error) => void,
  ) {}

  push(chunk: string): void {
    if (this.slow) return this.slow.push(chunk);
    this.buf.push(chunk);
    if (!endsAValue(chunk)) return;
    if (!this.onError) return this.read();
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try {
        const last = this.buf[this.buf.length - 1];
        if (last !== undefined && endsAValue(last)) this.read();
      } catch (err) {
        this.onError!(err as Error);
      }
    });
  }

  private read(): void {
    let text = this.buf.length === 1 ? this.buf[0] : this.buf.join('');
    this.buf = [];
    while (text) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        const msg = (err as Error).message;
        const after = /non-whitespace character after JSON at position (\d+)/.exec(msg);
        if (after) {
          const n = Number(after[1]);
          // the first message ends at n (JSON.parse checked it up to there)
          this.onValue(JSON.parse(text.slice(0, n)));
          text = text.slice(n).trimStart();
          continue;
        }
        // unfinished: the text ends before the message does (the error is at its very end)
        const at = /at position (\d+)/.exec(msg);
        if (/Unexpected end of JSON input/.test(msg) || (at && Number(at[1]) >= text.length)) {
          this.buf = [text];
          return;
        }
        this.slow = new JsonSplitter((t) => this.onValue(JSON.parse(t)));
        return this.slow.push(text);
      }
      this.onValue(value);
      return;
    }
  }
}

/** Whether a chunk's last non-blank character could close a JSON text. */
function endsAValue(chunk: string): boolean {
  let end = chunk.length - 1;
  for (let c = chunk.charCodeAt(end); c === 32 || c === 10 || c === 13 || c === 9; c = chunk.charCodeAt(--end));
  const last = chunk.charCodeAt(end);
  return last === 125 || last === 93;
}

export class OvsdbClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly monitors = new Map<string, (u: TableUpdates) => void>();
  private closedError: OpdError | undefined;
  private readonly closeListeners: ((err: OpdError) => void)[] = [];
  /** Requests sent (for benchmarks: the number of backend round trips). */
  static requests = 0;

  private constructor(
    readonly url: string,
    private readonly sock: Socket,
  ) {
    const decoder = new StringDecoder('utf8');
    const malformed = (err: Error) => {
      this.fail(new OpdError('backend-failed', `the OVS database at ${url} sent malformed data: ${err.message}`));
      sock.destroy();
    };
    const stream = new JsonStream((m) => this.onMessage(m as Message), malformed);
    sock.on('data', (b: Buffer) => {
      try {
        stream.push(decoder.write(b));
      } catch (err) {
        malformed(err as Error);
      }
    });
    sock.on('error', (err) => this.fail(lost(url, err)));
    sock.on('close', () => this.fail(lost(url)));
    this.updateRef();
  }

  /** Connect to ovsdb-server (unix:PATH or tcp:HOST:PORT). */
  static connect(url: string, opts: ConnectOptions = {}): Promise<OvsdbClient> {
    const addr = parseUrl(url);
    return new Promise((resolve, reject) => {
      const sock = 'path' in addr ? connect({ path: addr.path }) : connect({ host: addr.host, port: addr.port });
      const ms = opts.timeoutMs ?? TUNABLES.ovsdbConnectMs;
      const timer = setTimeout(() => {
        sock.destroy();
        reject(unreachable(url, `no answer within ${Math.round(ms / 1000)} s`));
      }, ms);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new OvsdbClient(url, sock));
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          unreachable(
            url,
            err.code === 'ENOENT'
              ? 'no such socket'
              : err.code === 'ECONNREFUSED'
                ? 'connection refused'
                : err.code === 'EACCES'
                  ? 'permission denied'
                  : err.message,
            err,
          ),
        );
      });
    });
  }

  /** The connection is gone (server stopped, close() called). */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** fn is called once when the connection ends for any reason other than close(); returns an unsubscribe. */
  onClose(fn: (err: OpdError) => void): () => void {
    this.closeListeners.push(fn);
    return () => {
      const i = this.closeListeners.indexOf(fn);
      if (i >= 0) this.closeListeners.splice(i, 1);
    };
  }

  /**
   * Send one JSON-RPC request and wait for its response's result. `onAbort` tells the server
   * to stop work on it when the time limit or the signal ends the wait.
   */
  request<T = unknown>(
    method: string,
    params: unknown[],
    opts: RequestOptions = {},
    onAbort?: (id: number) => void,
  ): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const ms = opts.timeoutMs ?? TUNABLES.ovsdbRequestMs;
    const limit = ms > 0 ? AbortSignal.timeout(ms) : undefined;
    const stop = opts.signal && limit ? AbortSignal.any([opts.signal, limit]) : (opts.signal ?? limit);
    const what = `${method} on the OVS database at ${this.url}`;
    const hint = 'check that ovsdb-server is running and not overloaded';
    if (stop?.aborted) return Promise.reject(abortedError(stop, what, { hint }));
    const id = this.nextId++;
    OvsdbClient.requests++;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject, method };
      if (stop) {
        const aborted = () => {
          if (this.pending.get(id) !== p) return;
          this.pending.delete(id);
          this.updateRef();
          if (!this.closedError) onAbort?.(id);
          reject(abortedError(stop, what, { hint }));
        };
        stop.addEventListener('abort', aborted, { once: true });
        p.done = () => stop.removeEventListener('abort', aborted);
      }
      this.pending.set(id, p);
      this.updateRef();
      this.sock.write(JSON.stringify({ method, params, id }));
    });
  }

  /** A JSON-RPC notification (no answer, RFC 7047 §4.1.4 `cancel`) or a request whose answer nobody awaits. */
  private send(method: string, params: unknown[], id: number | null): void {
    this.sock.write(JSON.stringify({ method, params, id }));
  }

  /**
   * RFC 7047 §4.1.3. Resolves to one result per operation; any failed operation rejects. When
   * opts.signal fires (or the time is up) before the answer, the server gets `cancel` for it.
   */
  async transact(db: string, ops: Operation[], opts: RequestOptions = {}): Promise<OpResult[]> {
    const results = await this.request<(OpResult | null)[]>('transact', [db, ...ops], opts, (id) =>
      this.send('cancel', [id], null),
    );
    const failed = results.findIndex((r) => r && r.error);
    if (failed >= 0) {
      const r = results[failed]!;
      // a result past the last operation is an error of the commit itself (constraints, references)
      const which =
        failed < ops.length
          ? `operation ${failed + 1} (${ops[failed].op}${'table' in ops[failed] ? ` ${(ops[failed] as { table: string }).table}` : ''})`
          : 'the commit';
      throw new TransactError(
        `OVSDB transaction failed at ${which}: ${r.error}${r.details ? `: ${r.details}` : ''}`,
        failed,
        r.error!,
        r.details,
      );
    }
    return results.map((r) => r ?? {});
  }

  /** RFC 7047 §4.1.5: start a monitor; onUpdate gets every later change. */
  async monitor(
    db: string,
    requests: Record<string, MonitorRequest>,
    onUpdate: (u: TableUpdates) => void,
    opts: RequestOptions = {},
  ): Promise<Monitor> {
    const id = `opd-monitor-${this.nextId}`;
    this.monitors.set(id, onUpdate);
    this.updateRef();
    let initial: TableUpdates;
    try {
      // stopped before its answer: the server may have started it, so end it there too
      initial = await this.request<TableUpdates>('monitor', [db, id, requests], opts, () =>
        this.send('monitor_cancel', [id], this.nextId++),
      );
    } catch (err) {
      this.monitors.delete(id);
      this.updateRef();
      throw err;
    }
    return {
      initial,
      cancel: async () => {
        if (!this.monitors.delete(id)) return;
        this.updateRef();
        if (!this.closed) await this.request('monitor_cancel', [id]).catch(() => undefined);
      },
    };
  }

  /** RFC 7047 §4.1.11: a round trip that does nothing. */
  async echo(...params: unknown[]): Promise<unknown[]> {
    return this.request<unknown[]>('echo', params);
  }

  /** The database names the server serves (§4.1.1). */
  async listDbs(): Promise<string[]> {
    return this.request<string[]>('list_dbs', []);
  }

  close(): void {
    if (!this.closedError)
      this.closedError = new OpdError(
        'backend-unavailable',
        `the connection to the OVS database at ${this.url} was closed`,
      );
    this.rejectAll(this.closedError);
    this.monitors.clear();
    this.sock.destroy();
  }

  private onMessage(msg: Message): void {
    if (msg === null || typeof msg !== 'object') return;
    if (typeof msg.method === 'string') {
      if (msg.method === 'echo' && msg.id !== null && msg.id !== undefined)
        this.sock.write(JSON.stringify({ id: msg.id, result: msg.params ?? [], error: null }));
      else if (msg.method === 'update' && Array.isArray(msg.params)) {
        const fn = this.monitors.get(String(msg.params[0]));
        if (fn) fn((msg.params[1] ?? {}) as TableUpdates);
      }
      return;
    }
    const id = typeof msg.id === 'number' ? msg.id : Number(msg.id);
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.done?.();
    this.updateRef();
    if (msg.error !== null && msg.error !== undefined) {
      const e = msg.error as { error?: string; details?: string } | string;
      const text = typeof e === 'string' ? e : `${e.error ?? 'error'}${e.details ? `: ${e.details}` : ''}`;
      p.reject(new OpdError('backend-failed', `the OVS database at ${this.url} refused ${p.method}: ${text}`));
    } else p.resolve(msg.result);
  }

  private fail(err: OpdError): void {
    if (this.closedError) return;
    this.closedError = err;
    this.rejectAll(err);
    this.monitors.clear();
    for (const fn of this.closeListeners) fn(err);
  }

  private rejectAll(err: OpdError): void {
    for (const [id, p] of this.pending) {
      p.done?.();
      this.pending.delete(id);
      p.reject(err);
    }
  }

  /** Keep the process alive only while a request is pending or a monitor runs. */
  private updateRef(): void {
    if (this.pending.size || this.monitors.size) this.sock.ref();
    else this.sock.unref();
  }
}

/** A transaction some operation of which (or whose commit) failed; nothing of it was applied. */
export class TransactError extends OpdError {
  constructor(
    message: string,
    readonly index: number,
    readonly error: string,
    readonly details?: string,
  ) {
    super('backend-failed', message);
  }
}

function unreachable(url: string, why: string, cause?: unknown): OpdError {
  return new OpdError('backend-unavailable', `cannot reach the OVS database at ${url} (${why})`, {
    hint: 'start ovsdb-server (systemctl start openvswitch-switch) or give --ovs-db / OPD_OVS_DB',
    cause,
  });
}

function lost(url: string, cause?: Error): OpdError {
  return new OpdError(
    'backend-unavailable',
    `lost the connection to the OVS database at ${url}${cause ? ` (${cause.message})` : ''}`,
    {
      hint: 'check that ovsdb-server is running; a rerun converges whatever part of the change had not committed',
      cause,
    },
  );
}

// ---- values ---------------------------------------------------------------------------------

/** Decode an OVSDB value into plain JS: sets → arrays, maps → objects, uuids → strings. */
export function decodeValue(v: unknown): unknown {
  if (!Array.isArray(v) || v.length !== 2) return v;
  const tag = v[0];
  const body = v[1];
  if (tag === 'uuid' || tag === 'named-uuid') return body;
  if (tag === 'set') {
    const xs = body as unknown[];
    const out = new Array(xs.length);
    for (let i = 0; i < xs.length; i++) out[i] = decodeValue(xs[i]);
    return out;
  }
  if (tag === 'map') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of body as [unknown, unknown][]) out[String(decodeValue(k))] = decodeValue(x);
    return out;
  }
  return v;
}

/** A row with every column decoded (see decodeValue). */
export function decodeRow(r: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in r) out[k] = decodeValue(r[k]);
  return out;
}

export const uuid = (u: string): ['uuid', string] => ['uuid', u];
export const namedUuid = (n: string): ['named-uuid', string] => ['named-uuid', n];
export const set = (xs: Atom[]): ['set', Atom[]] => ['set', xs];
/** A map column from a plain object (values become strings). */
export const map = (o: Record<string, unknown>): ['map', [Atom, Atom][]] => [
  'map',
  Object.entries(o)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => [k, String(v)] as [Atom, Atom]),
];
