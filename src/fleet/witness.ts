/**
 * etcd as an external witness of a host's audit trail: the daemon publishes its audit head
 * {seq, hash} after every run; here the local chain is compared with every head the store
 * still remembers (the key's history back to the last compaction). A head the local trail no
 * longer reaches is a truncation; one whose entry differs is a rewrite. No HMAC key needed.
 */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Etcd3 } from 'etcd3';
import { auditHeadKey } from './keys.js';

/** How many earlier versions of the head key to compare, newest first. */
const HISTORY = 100;

export interface WitnessResult {
  ok: boolean;
  host: string;
  witnessed: { seq: number; hash: string; at?: string }[];
  local_last_seq: number;
  problems: string[];
}

export async function witnessedHeads(c: Etcd3, host: string): Promise<{ seq: number; hash: string; at?: string }[]> {
  const out: { seq: number; hash: string; at?: string }[] = [];
  let res = await c.get(auditHeadKey(host)).exec();
  for (let i = 0; i < HISTORY && res.kvs.length; i++) {
    const kv = res.kvs[0];
    try {
      out.push(JSON.parse(kv.value.toString()) as { seq: number; hash: string; at?: string });
    } catch {
      /* not ours */
    }
    const rev = Number(kv.mod_revision) - 1;
    if (Number(kv.version) <= 1 || rev < 1) break;
    try {
      res = await c.get(auditHeadKey(host)).revision(rev).exec();
    } catch {
      break; // compacted: older heads are gone
    }
  }
  return out;
}

export async function witnessCheck(c: Etcd3, host: string, log: string): Promise<WitnessResult> {
  const witnessed = await witnessedHeads(c, host);
  const want = new Map(witnessed.map((w) => [w.seq, w.hash]));
  const found = new Map<number, string>();
  let last = 0;
  if (existsSync(log)) {
    const rl = createInterface({ input: createReadStream(log), crlfDelay: Infinity });
    for await (const l of rl) {
      if (!l.trim()) continue;
      try {
        const e = JSON.parse(l) as { seq: number; hash: string };
        last = Math.max(last, e.seq);
        if (want.has(e.seq)) found.set(e.seq, e.hash);
      } catch {
        /* the chain walk reports unparsable lines */
      }
    }
  }
  const problems: string[] = [];
  for (const w of witnessed) {
    if (w.seq > last)
      problems.push(
        `etcd witnessed seq ${w.seq}${w.at ? ` (at ${w.at})` : ''} but the local trail ends at seq ${last}: the trail was truncated`,
      );
    else if (found.get(w.seq) !== w.hash)
      problems.push(
        `entry seq ${w.seq} is not the one etcd witnessed (hash ${found.get(w.seq)?.slice(0, 12) ?? 'missing'} locally, ${w.hash.slice(0, 12)} witnessed): the trail was rewritten`,
      );
  }
  return { ok: problems.length === 0, host, witnessed, local_last_seq: last, problems: [...new Set(problems)] };
}
