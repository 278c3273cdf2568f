/**
 * etcd as an external witness of a host's audit trail, kept where the host cannot erase it.
 *
 * What etcd 3.4 can and cannot express (checked against a real member):
 * - RBAC grants read, write or readwrite on a key range. Write covers put, overwrite AND delete:
 *   there is no "create only" permission, and a transaction's compare (create_revision == 0) is
 *   a choice of the client, not a rule the server imposes on it.
 * - Any authenticated user may compact the store: a host can throw away the history of its own
 *   keys (and everyone else's), so "verify through the key's revision history" is erasable too.
 *
 * So the host never holds the witness. It publishes its head {seq, hash} to its own key
 * (/opd/hosts/<host>/audit-head, which it may overwrite or delete), and an operator-side copier,
 * `opd fleet witness`, copies every head it sees into /opd/witness/<host>/, a prefix the host may
 * only read. The copier follows a watch on /opd/hosts/ (every put, overwritten or deleted ones
 * included, reaches it within milliseconds, before a host could compact them away) and resumes
 * from its last revision after a restart (etcd replays the history since then, unless it was
 * compacted: that window is recorded as a gap). Each head becomes /opd/witness/<host>/heads/<seq>,
 * created once (a transaction that fails when the key exists) and never rewritten; a second,
 * different hash published for the same seq is kept as a conflict record beside it.
 *
 * Every entry's hash covers the one before it, so a witnessed head {seq N, hash H} pins the whole
 * trail up to N, and checking every witnessed head catches a trail rewritten from any point, even
 * one regrown past the old length. `opd audit verify --witness` fails when the local trail no
 * longer reaches a witnessed seq (truncated, reset or removed), when an entry has another hash than
 * the one witnessed (rewritten), when a conflict was recorded, and when nothing was ever witnessed
 * (no history to vouch for).
 */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Etcd3 } from 'etcd3';
import {
  COPIER_STATE,
  HOSTS,
  auditHeadKey,
  isName,
  witnessConflictPrefix,
  witnessHeadKey,
  witnessHeadsPrefix,
} from './keys.js';

/** A head as a host publishes it. */
export interface Head {
  seq: number;
  hash: string;
  at?: string;
}

/** A witnessed head: a head the copier saw, with the revision of the host's put. */
export interface WitnessedHead extends Head {
  revision: string;
  copied_at: string;
}

/** A different hash published for a seq already witnessed (kept, never replacing it). */
export interface WitnessConflict extends Head {
  revision: string;
  seen_at: string;
  witnessed_hash: string;
}

export interface CopierState {
  revision: string;
  updated_at: string;
  gaps: { from: string; to: string; at: string }[];
}

export interface WitnessResult {
  ok: boolean;
  host: string;
  /** every witnessed head, by seq */
  witnessed: WitnessedHead[];
  /** what the host's own key says now (null: absent, or not a head) */
  published: Head | null;
  conflicts: WitnessConflict[];
  local_last_seq: number;
  copier: CopierState | null;
  problems: string[];
  warnings: string[];
}

/** Conflict records kept per host (the first ones are the evidence; later ones add little). */
const MAX_CONFLICTS = 100;

/** A head value as published, or undefined when it is not one (the copier ignores it). */
export function parseHead(text: string | Buffer | null | undefined): Head | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    const v = JSON.parse(text.toString()) as Record<string, unknown>;
    if (!v || typeof v !== 'object' || !Number.isSafeInteger(v.seq) || (v.seq as number) < 0) return undefined;
    if (typeof v.hash !== 'string' || !/^[0-9a-f]{64}$/.test(v.hash)) return undefined;
    return { seq: v.seq as number, hash: v.hash, ...(typeof v.at === 'string' ? { at: v.at } : {}) };
  } catch {
    return undefined;
  }
}

/** The host whose head key this is, or undefined. */
export function headKeyHost(key: string): string | undefined {
  if (!key.startsWith(HOSTS) || !key.endsWith('/audit-head')) return undefined;
  const host = key.slice(HOSTS.length, -'/audit-head'.length);
  return isName(host) ? host : undefined;
}

const cmpRev = (a: string, b: string) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);

export type RecordOutcome = 'new' | 'same' | 'conflict';

/**
 * Record one head `host` published by the put at `revision`: created once under its seq (a
 * transaction that fails when the key exists); a different hash for a witnessed seq becomes a
 * conflict record, never a rewrite.
 */
export async function recordHead(c: Etcd3, host: string, head: Head, revision: string): Promise<RecordOutcome> {
  const key = witnessHeadKey(host, head.seq);
  const now = new Date().toISOString();
  const rec: WitnessedHead = {
    seq: head.seq,
    hash: head.hash,
    ...(head.at ? { at: head.at } : {}),
    revision,
    copied_at: now,
  };
  const t = await c
    .if(key, 'Create', '==', 0)
    .then(c.put(key).value(JSON.stringify(rec)))
    .else(c.get(key))
    .commit();
  if (t.succeeded) return 'new';
  const kv = t.responses[0]?.response_range?.kvs?.[0];
  const cur = kv ? (JSON.parse(kv.value.toString()) as WitnessedHead) : undefined;
  if (!cur || cur.hash === head.hash) return 'same';
  const existing = await c.getAll().prefix(witnessConflictPrefix(host)).keys();
  if (existing.length < MAX_CONFLICTS) {
    const ckey = witnessConflictPrefix(host) + revision.padStart(20, '0');
    const conflict: WitnessConflict = {
      seq: head.seq,
      hash: head.hash,
      ...(head.at ? { at: head.at } : {}),
      revision,
      seen_at: now,
      witnessed_hash: cur.hash,
    };
    await c
      .if(ckey, 'Create', '==', 0)
      .then(c.put(ckey).value(JSON.stringify(conflict)))
      .commit();
  }
  return 'conflict';
}

export interface CopyEvent {
  host: string;
  head: Head;
  revision: string;
  outcome: RecordOutcome;
}

/**
 * One catch-up pass: every host's current head and the earlier versions of that key the store
 * still holds (back to its creation or the last compaction), oldest first. Returns the store
 * revision the pass read at (a watch continues from the next one).
 */
export async function copyOnce(c: Etcd3, onEvent?: (e: CopyEvent) => void): Promise<string> {
  const res = await c.getAll().prefix(HOSTS).exec();
  const at = String(res.header.revision);
  for (const kv of res.kvs) {
    const host = headKeyHost(kv.key.toString());
    if (!host) continue;
    const versions: { head: Head; revision: string }[] = [];
    let cur: typeof kv | undefined = kv;
    for (let i = 0; cur && i < 1000; i++) {
      const h = parseHead(cur.value);
      if (h) versions.push({ head: h, revision: String(cur.mod_revision) });
      if (Number(cur.version) <= 1) break;
      try {
        const prev = await c
          .get(kv.key.toString())
          .revision(String(BigInt(cur.mod_revision) - 1n))
          .exec();
        cur = prev.kvs[0];
      } catch {
        break; // compacted: older versions are gone (the copier records what it saw while following)
      }
    }
    for (const v of versions.reverse()) {
      const outcome = await recordHead(c, host, v.head, v.revision);
      onEvent?.({ host, head: v.head, revision: v.revision, outcome });
    }
  }
  return at;
}

export async function readCopierState(c: Etcd3): Promise<CopierState | null> {
  try {
    const s = await c.get(COPIER_STATE).string();
    return s === null ? null : (JSON.parse(s) as CopierState);
  } catch {
    return null; // a host's credentials may not read it
  }
}

export async function writeCopierState(c: Etcd3, s: CopierState): Promise<void> {
  await c.put(COPIER_STATE).value(JSON.stringify({ ...s, gaps: s.gaps.slice(-20) }));
}

export interface Follower {
  /** resolves when stopped, rejects when the watch cannot go on */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Follow the hosts' head keys from `from` (exclusive): every put is recorded in revision order.
 * On a compacted start revision the history in between is lost: the gap is recorded, a catch-up
 * pass reads what is left, and following resumes from there.
 */
export async function follow(
  c: Etcd3,
  opts: {
    from: string;
    onEvent?: (e: CopyEvent) => void;
    onGap?: (g: { from: string; to: string }) => void;
    onError?: (err: Error) => void;
    state: CopierState;
  },
): Promise<Follower> {
  let stopped = false;
  let chain: Promise<void> = Promise.resolve();
  let watcher: Awaited<ReturnType<ReturnType<Etcd3['watch']>['create']>> | undefined;
  let finish!: () => void;
  let fail!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    finish = res;
    fail = rej;
  });
  let lastSaved = 0;
  let restarts: number[] = [];
  const save = (rev: string, force = false) => {
    if (cmpRev(rev, opts.state.revision) <= 0) return;
    opts.state.revision = rev;
    opts.state.updated_at = new Date().toISOString();
    if (!force && Date.now() - lastSaved < 1000) return;
    lastSaved = Date.now();
    chain = chain.then(() => writeCopierState(c, opts.state)).catch((e: Error) => opts.onError?.(e));
  };
  const start = async (from: string): Promise<void> => {
    const w = await c
      .watch()
      .prefix(HOSTS)
      .startRevision(String(BigInt(from) + 1n))
      .create();
    if (stopped) return void (await w.cancel());
    watcher = w;
    w.on('data', (res) => {
      const events = res.events
        .filter((ev) => ev.type === 'Put')
        .map((ev) => ({
          host: headKeyHost(ev.kv.key.toString()),
          head: parseHead(ev.kv.value),
          rev: String(ev.kv.mod_revision),
        }));
      chain = chain.then(async () => {
        for (const e of events) {
          if (!e.host || !e.head) continue;
          const outcome = await recordHead(c, e.host, e.head, e.rev);
          opts.onEvent?.({ host: e.host, head: e.head, revision: e.rev, outcome });
        }
      });
      chain = chain.catch((e: Error) => opts.onError?.(e));
      const last = res.events.length ? String(res.events[res.events.length - 1].kv.mod_revision) : undefined;
      if (last) void chain.then(() => save(last));
    });
    w.on('error', (err: Error) => {
      if (stopped) return;
      watcher = undefined;
      // etcd cancels a watch whose start revision was compacted (etcd3 reports no reason): read
      // what is left, note the gap when the history since the last copied revision is gone, and
      // follow from there; anything else that keeps cancelling the watch ends the copier
      restarts = restarts.filter((t) => t > Date.now() - 60_000);
      restarts.push(Date.now());
      if (restarts.length > 5) return fail(err);
      void (async () => {
        try {
          await chain;
          const since = String(BigInt(opts.state.revision) + 1n);
          const compacted = await c
            .get(HOSTS)
            .revision(since)
            .exec()
            .then(
              () => false,
              (e: Error) => /compacted/i.test(e.message),
            );
          const to = await copyOnce(c, opts.onEvent);
          if (compacted) {
            const gap = { from: since, to, at: new Date().toISOString() };
            opts.state.gaps.push(gap);
            opts.onGap?.(gap);
          }
          save(to, true);
          await chain;
          await start(to);
        } catch (e) {
          fail(e as Error);
        }
      })();
    });
  };
  await start(opts.from);
  return {
    done,
    async stop() {
      stopped = true;
      await watcher?.cancel().catch(() => undefined);
      await chain;
      await writeCopierState(c, opts.state).catch(() => undefined);
      finish();
    },
  };
}

/** The local trail's last seq and the hashes at the given seqs. */
async function localHashes(log: string, want: Set<number>): Promise<{ last: number; found: Map<number, string> }> {
  const found = new Map<number, string>();
  let last = -1;
  if (existsSync(log)) {
    const rl = createInterface({ input: createReadStream(log), crlfDelay: Infinity });
    for await (const l of rl) {
      if (!l.trim()) continue;
      try {
        const e = JSON.parse(l) as { seq: number; hash: string };
        if (!Number.isSafeInteger(e.seq)) continue;
        last = Math.max(last, e.seq);
        if (want.has(e.seq)) found.set(e.seq, e.hash);
      } catch {
        /* the chain walk reports unparsable lines */
      }
    }
  }
  return { last, found };
}

/** Compare the local trail with what etcd's witness holds for `host`. */
export async function witnessCheck(c: Etcd3, host: string, log: string): Promise<WitnessResult> {
  const witnessed = Object.entries(await c.getAll().prefix(witnessHeadsPrefix(host)).strings())
    .map(([, v]) => JSON.parse(v) as WitnessedHead)
    .sort((a, b) => a.seq - b.seq);
  const conflicts = Object.entries(await c.getAll().prefix(witnessConflictPrefix(host)).strings())
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, v]) => JSON.parse(v) as WitnessConflict);
  const published = parseHead(await c.get(auditHeadKey(host)).string()) ?? null;
  const copier = await readCopierState(c);
  const want = new Set<number>([...witnessed.map((w) => w.seq), ...(published ? [published.seq] : [])]);
  const { last, found } = await localHashes(log, want);
  const problems: string[] = [];
  const warnings: string[] = [];
  const when = (h: Head) => (h.at ? ` (published ${h.at})` : '');
  const ends = last < 0 ? 'is empty or missing' : `ends at seq ${last}`;
  if (!witnessed.length)
    problems.push(
      `etcd's witness (${witnessHeadsPrefix(host)}) holds no audit head for ${host}: no history to vouch for (never published, or erased before the operator's copier saw it; is \`opd fleet witness\` running?)`,
    );
  // the newest witnessed head beyond the local end says it all; then every rewritten entry
  const beyond = witnessed.filter((w) => w.seq > last);
  if (beyond.length) {
    const top = beyond[beyond.length - 1];
    problems.push(
      `etcd witnessed seq ${top.seq}${when(top)} but the local trail ${ends}: the trail was truncated, reset or removed${beyond.length > 1 ? ` (${beyond.length} witnessed heads lie beyond its end)` : ''}`,
    );
  }
  const differ = witnessed.filter((w) => w.seq <= last && found.get(w.seq) !== w.hash);
  if (differ.length) {
    const first = differ[0];
    problems.push(
      `entry seq ${first.seq} is not the one etcd witnessed (hash ${found.get(first.seq)?.slice(0, 12) ?? 'missing'} locally, ${first.hash.slice(0, 12)} witnessed${when(first)}): the trail was rewritten${differ.length > 1 ? ` (${differ.length} witnessed entries differ)` : ''}`,
    );
  }
  for (const k of conflicts)
    problems.push(
      `at revision ${k.revision} the host published hash ${k.hash.slice(0, 12)} for seq ${k.seq}, after ${k.witnessed_hash.slice(0, 12)} had been witnessed: its trail was rewritten or reset`,
    );
  const newest = witnessed[witnessed.length - 1];
  if (published && !witnessed.some((w) => w.seq === published.seq && w.hash === published.hash)) {
    if (published.seq > last)
      problems.push(`the host published seq ${published.seq}${when(published)} but the local trail ${ends}`);
    else if (found.get(published.seq) !== published.hash)
      problems.push(
        `entry seq ${published.seq} is not the one the host published (hash ${found.get(published.seq)?.slice(0, 12) ?? 'missing'} locally, ${published.hash.slice(0, 12)} published)`,
      );
    if (!newest || published.seq > newest.seq)
      warnings.push(
        `the host's latest head (seq ${published.seq}) is not witnessed yet: a head is protected once \`opd fleet witness\` has copied it`,
      );
  }
  if (!published && witnessed.length)
    warnings.push(
      `the host's own head key ${auditHeadKey(host)} is gone (deleted with the host's credentials or by an operator)`,
    );
  if (copier?.gaps.length)
    warnings.push(
      `the copier missed compacted history ${copier.gaps.map((g) => `(revisions ${g.from}-${g.to}, noticed ${g.at})`).join(', ')}: heads published only then were not witnessed`,
    );
  return {
    ok: problems.length === 0,
    host,
    witnessed,
    published,
    conflicts,
    local_last_seq: last,
    copier,
    problems: [...new Set(problems)],
    warnings,
  };
}
