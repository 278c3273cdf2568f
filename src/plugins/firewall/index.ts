/**
 * firewall: nftables tables, chains (type, hook, priority, policy) and their rules, through
 * `nft -j`. Reads: one `nft -j list ruleset` (plus `nft -a list ruleset` when a rule differs, to
 * show it). Rules of the document are canonicalized by the kernel itself in a throwaway network
 * namespace (`unshare -n nft -j -i`), so they compare as nft prints them back: no false diffs.
 * Apply: one atomic `nft -f -` per table; chains whose rules differ are flushed and refilled in
 * that same transaction.
 */
import { sectionSpec } from '../../core/schema-file.js';
import manifest from './manifest.js';
import type { Operation } from 'fast-json-patch';
import type { Change, ChangeResult, Obj, Plugin, ResourceDiff, Settings } from '../../core/plugin.js';
import type { Chain, FirewallDoc, Rule, Table } from './section.gen.js';
import { ApplyContext, assertApplyContext } from '../../core/plugin.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { canonical } from '../../core/canonical.js';
import { ExecFailure, runMutate, runRead, spawnLines } from '../../exec.js';
import { netnsOf } from '../../host/netns.js';
import { parseTextRules, priorityNumber, ruleKey, ruleText, type JsonRule } from './rules.js';
import {
  applyUfw,
  foreignDrops,
  normalizeUfwRule,
  planUfwRule,
  readUfwRules,
  refusal,
  type ForeignDrop,
  type UfwData,
  type UfwSpec,
} from './ufw.js';

/**
 * The section's type, generated from schema/firewall.schema.json (npm run gen:types); a read also
 * reports the base chains of other tables (ufw's among them) that drop by policy.
 */
export type FirewallSection = Omit<FirewallDoc, 'ufw_rules'> & {
  ufw_rules?: Record<string, UfwSpec>;
  foreign_drops?: ForeignDrop[];
} & Obj;

const NFT_HINT = 'install nftables (apt-get install nftables)';

/** nft: `list` through the read door (settings), `-f -` through the mutate door (an ApplyContext). */
async function nft(via: Settings | ApplyContext, args: string[], input?: string) {
  const settings = via instanceof ApplyContext ? via.settings : via;
  const ns = netnsOf(settings);
  const argv = ns ? ['netns', 'exec', ns, 'nft', ...args] : args;
  const opts = { backend: 'nftables', installHint: NFT_HINT, input };
  try {
    return await (via instanceof ApplyContext
      ? runMutate(via, ns ? 'ip' : 'nft', argv, opts)
      : runRead(ns ? 'ip' : 'nft', argv, opts));
  } catch (err) {
    if (err instanceof ExecFailure && /Operation not permitted/.test(err.stderr))
      throw new OpdError('permission', `nft: ${err.stderr.trim().split('\n')[0]}`, {
        hint: 'run opd as root (CAP_NET_ADMIN)',
      });
    if (err instanceof ExecFailure && /exec of "nft" failed/.test(err.stderr))
      throw new OpdError('backend-unavailable', 'nft is not installed', { hint: NFT_HINT });
    throw err;
  }
}

/** A chain in `nft -j` output (its type, hook and policy are nft's words, the schema's too). */
interface JsonChain {
  family: string;
  table: string;
  name: string;
  type?: Chain['type'];
  hook?: Chain['hook'];
  prio?: number;
  policy?: Chain['policy'];
}

interface Ruleset {
  tables: Set<string>;
  chains: Map<string, JsonChain>;
  rules: Map<string, JsonRule[]>;
}

/** One item of `nft -j list ruleset`. */
interface NftItem {
  table?: { family: string; name: string };
  chain?: JsonChain;
  rule?: JsonRule;
}

function parseRuleset(out: string): Ruleset {
  let items: NftItem[];
  try {
    items = (JSON.parse(out) as { nftables?: NftItem[] }).nftables ?? [];
  } catch (err) {
    throw new OpdError('backend-failed', `could not parse nft -j output: ${(err as Error).message}`, {
      hint: 'nftables ≥ 0.9 with JSON support is needed',
    });
  }
  const rs: Ruleset = { tables: new Set(), chains: new Map(), rules: new Map() };
  for (const it of items) {
    if (it.table) rs.tables.add(`${it.table.family} ${it.table.name}`);
    else if (it.chain) {
      const c = it.chain;
      rs.chains.set(`${c.family} ${c.table} ${c.name}`, c);
    } else if (it.rule) {
      const r = it.rule;
      const k = `${r.family} ${r.table} ${r.chain}`;
      rs.rules.set(k, [...(rs.rules.get(k) ?? []), r]);
    }
  }
  return rs;
}

const familyOf = (spec: Table | undefined) => spec?.family ?? 'inet';
const chainsOf = (spec: Table | undefined): Record<string, Chain> => spec?.chains ?? {};
const isAbsent = (v: unknown) => isObj(v) && v.state === 'absent';

function chainSpec(c: JsonChain): Chain {
  const o: Chain = {};
  if (c.type) o.type = c.type;
  if (c.hook) o.hook = c.hook;
  if (c.prio !== undefined) o.priority = c.prio;
  if (c.policy) o.policy = c.policy;
  return o;
}

/** `add chain` text: a base chain with type/hook/priority (and policy), or a regular chain. */
function chainDecl(family: string, table: string, name: string, spec: Chain): string {
  if (spec.hook === undefined) return `add chain ${family} ${table} ${name}`;
  const policy = spec.policy ? ` policy ${spec.policy};` : '';
  return `add chain ${family} ${table} ${name} { type ${spec.type ?? 'filter'} hook ${spec.hook} priority ${spec.priority ?? 0};${policy} }`;
}

/**
 * Canonicalize the document's rules: load them into a fresh, empty network namespace that dies
 * with the process and let nft print them back. Returns rule keys by `family table chain`.
 */
async function canonicalRules(desired: FirewallSection): Promise<Map<string, string[]>> {
  const lines: string[] = [];
  const where: { line: string; address: string }[] = [];
  const expected: { key: string; address: string }[] = [];
  for (const [t, spec] of Object.entries(desired.tables ?? {}).sort()) {
    if (isAbsent(spec)) continue;
    const fam = familyOf(spec);
    const chains = chainsOf(spec);
    if (!Object.values(chains).some((c) => Array.isArray(c.rules) && c.rules.length)) continue;
    lines.push(`add table ${fam} ${t}`);
    for (const [c, cs] of Object.entries(chains).sort())
      if (!isAbsent(cs)) lines.push(chainDecl(fam, t, c, { ...cs, policy: undefined }));
    for (const [c, cs] of Object.entries(chains).sort()) {
      if (isAbsent(cs) || !Array.isArray(cs.rules)) continue;
      cs.rules.forEach((r: unknown, i: number) => {
        const address = `firewall/tables/${t}/chains/${c}/rules/${i}`;
        const line = `add rule ${fam} ${t} ${c} ${ruleText(r, address)}`;
        lines.push(line);
        where.push({ line, address });
        expected.push({ key: `${fam} ${t} ${c}`, address });
      });
    }
  }
  const out = new Map<string, string[]>();
  if (!lines.length) return out;
  lines.push('list ruleset');
  let res;
  try {
    res = await runRead('unshare', ['--net', '--', 'nft', '-j', '-i'], {
      input: lines.join('\n') + '\n',
      backend: 'nftables',
      installHint: 'install util-linux (unshare) and nftables',
    });
  } catch (err) {
    if (err instanceof ExecFailure && /Operation not permitted/.test(err.stderr))
      throw new OpdError(
        'permission',
        'firewall: comparing rules needs a private network namespace (unshare --net), which needs root',
        { hint: 'run opd as root' },
      );
    throw err;
  }
  const errText = res.stderr.trim();
  if (/Error:/.test(errText)) {
    const bad = where.filter((w) => errText.includes(w.line.slice(0, 120)));
    throw new OpdError(
      'invalid-document',
      `firewall: nft rejects ${bad.length ? bad.map((b) => b.address).join(', ') : 'a rule or chain'}: ${errText.split('\n').slice(0, 6).join(' | ')}`,
      {
        hint: 'write the rule as `nft add rule` accepts it (iifname/oifname rather than iif/oif; no named sets); check it with `nft -c`',
      },
    );
  }
  const jsonLine =
    res.stdout
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .pop() ?? '{}';
  const rs = parseRuleset(jsonLine);
  for (const [k, rules] of rs.rules) out.set(k, rules.map(ruleKey));
  const count = new Map<string, number>();
  for (const e of expected) count.set(e.key, (count.get(e.key) ?? 0) + 1);
  for (const [k, n] of count)
    if ((out.get(k)?.length ?? 0) !== n)
      throw new OpdError(
        'invalid-document',
        `firewall: nft accepted ${out.get(k)?.length ?? 0} of the ${n} rules of ${k}`,
        { hint: 'check the rules with `nft -c`' },
      );
  return out;
}

function normalizeFirewall(section: unknown): unknown {
  if (isObj(section) && isObj(section.ufw_rules))
    section = {
      ...section,
      ufw_rules: Object.fromEntries(Object.entries(section.ufw_rules).map(([k, v]) => [k, normalizeUfwRule(v)])),
    };
  if (!isObj(section) || !isObj(section.tables)) return section;
  const tables: Obj = {};
  for (const [t, spec] of Object.entries(section.tables)) {
    if (!isObj(spec) || isAbsent(spec)) {
      tables[t] = spec;
      continue;
    }
    const s: Obj = { ...spec };
    if (s.family === undefined) s.family = 'inet';
    if (isObj(s.chains)) {
      const chains: Obj = {};
      for (const [c, cs] of Object.entries(s.chains)) {
        if (!isObj(cs)) chains[c] = cs;
        else
          chains[c] =
            cs.priority !== undefined ? { ...cs, priority: priorityNumber(String(s.family), cs.priority) } : cs;
      }
      s.chains = chains;
    }
    tables[t] = s;
  }
  return { ...section, tables };
}

interface Script {
  /** phase → lines: 0 add table, 1 flush, 2 delete chains, 3 add chains, 4 add rules, 5 delete table */
  lines: [number, string][];
  table: string;
}

const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

function opsUnder(ops: Operation[], prefix: string): Operation[] {
  return ops.filter((o) => o.path === prefix || o.path.startsWith(prefix + '/'));
}

function rulesLines(fam: string, t: string, c: string, rules: unknown[], address: string): [number, string][] {
  return rules.map((r, i) => [4, `add rule ${fam} ${t} ${c} ${ruleText(r, `${address}/rules/${i}`)}`]);
}

export function planTable(diff: ResourceDiff): Change<FirewallData>[] {
  const { name: t, address } = diff;
  const base = { resource: address, plugin: 'firewall' };
  const refused = diff.faults?.[address];
  if (refused && diff.action !== 'delete')
    return [
      {
        ...base,
        address,
        action: 'refuse',
        summary: `table ${t}: ${refused}`,
        blocker: refused,
        ops: diff.ops,
        data: { table: t, lines: [] } satisfies Script,
      },
    ];
  if (diff.action === 'delete') {
    const fam = familyOf(diff.current);
    return [
      {
        ...base,
        address,
        action: 'delete',
        summary: `table ${fam} ${t} and all its chains and rules`,
        ops: diff.ops,
        data: { table: t, lines: [[5, `delete table ${fam} ${t}`]] } satisfies Script,
      },
    ];
  }
  const want = diff.desired!;
  const fam = familyOf(want);
  const wantChains = chainsOf(want);
  const changes: Change<FirewallData>[] = [];
  const tableLine: [number, string] = [0, `add table ${fam} ${t}`];
  if (diff.action === 'create') {
    changes.push({
      ...base,
      address,
      action: 'create',
      summary: `table ${fam} ${t}`,
      ops: diff.ops.filter((o) => !o.path.startsWith('/chains/')),
      data: { table: t, lines: [tableLine] } satisfies Script,
    });
  }
  const curChains = chainsOf(diff.current);
  const after = diff.action === 'create' ? [address] : [];
  for (const c of [...new Set([...Object.keys(curChains), ...Object.keys(wantChains)])].sort()) {
    const ca = `${address}/chains/${c}`;
    const ops = opsUnder(diff.ops, `/chains/${esc(c)}`);
    const w = wantChains[c];
    const cur = curChains[c];
    const lines: [number, string][] = [tableLine];
    if (w && !cur) {
      lines.push([3, chainDecl(fam, t, c, w)]);
      if (Array.isArray(w.rules)) lines.push(...rulesLines(fam, t, c, w.rules, ca));
      const n = Array.isArray(w.rules) ? w.rules.length : 0;
      changes.push({
        ...base,
        address: ca,
        action: 'create',
        summary: `${w.hook ? `${w.type ?? 'filter'} chain, hook ${w.hook}, priority ${w.priority ?? 0}${w.policy ? `, policy ${w.policy}` : ''}` : 'regular chain'}${n ? `, ${n} rule${n === 1 ? '' : 's'}` : ''}`,
        after,
        ops,
        data: { table: t, lines } satisfies Script,
      });
      continue;
    }
    if (!w && cur) {
      lines.push([1, `flush chain ${fam} ${t} ${c}`], [2, `delete chain ${fam} ${t} ${c}`]);
      changes.push({
        ...base,
        address: ca,
        action: 'delete',
        summary: 'chain and its rules',
        ops,
        data: { table: t, lines } satisfies Script,
      });
      continue;
    }
    if (!w || !cur || !ops.length) continue;
    const text: string[] = [];
    const differs = (k: keyof Chain) => w[k] !== undefined && canonical(cur[k]) !== canonical(w[k]);
    const rebuild =
      differs('type') || differs('hook') || differs('priority') || (w.hook === undefined) !== (cur.hook === undefined);
    const rulesDiffer = Array.isArray(w.rules) && canonical(cur.rules) !== canonical(w.rules);
    if (rebuild) {
      for (const k of ['type', 'hook', 'priority'] as const)
        if (differs(k)) text.push(`${k} ${cur[k] ?? 'none'} → ${w[k]}`);
      lines.push(
        [1, `flush chain ${fam} ${t} ${c}`],
        [2, `delete chain ${fam} ${t} ${c}`],
        [3, chainDecl(fam, t, c, w)],
      );
      const rules = Array.isArray(w.rules) ? w.rules : [];
      lines.push(...rulesLines(fam, t, c, rules, ca));
      changes.push({
        ...base,
        address: ca,
        action: 'recreate',
        summary: text.join(', '),
        reason: 'nftables cannot change the type, hook or priority of a chain in place',
        ops,
        data: { table: t, lines } satisfies Script,
      });
      continue;
    }
    if (differs('policy')) {
      text.push(`policy ${cur.policy ?? 'accept'} → ${w.policy}`);
      lines.push([3, chainDecl(fam, t, c, { ...cur, ...w })]);
    }
    if (rulesDiffer) {
      const cr = (cur.rules ?? []) as unknown[];
      const wr = w.rules as unknown[];
      const changed = wr.filter((r, i) => canonical(cr[i]) !== canonical(r)).length;
      const extra = Math.max(0, cr.length - wr.length);
      text.push(`rules: ${changed} to set${extra ? `, ${extra} to remove` : ''} (${cr.length} → ${wr.length})`);
      lines.push([1, `flush chain ${fam} ${t} ${c}`], ...rulesLines(fam, t, c, wr, ca));
    }
    if (lines.length > 1)
      changes.push({
        ...base,
        address: ca,
        action: 'update',
        summary: text.join(', '),
        ops,
        data: { table: t, lines } satisfies Script,
      });
  }
  return changes;
}

/** A firewall change: an nftables script of one table, or ufw commands. */
type FirewallData = Script | UfwData;

const plugin: Plugin<FirewallSection, FirewallData> = {
  ...sectionSpec(manifest),

  normalize: normalizeFirewall,

  async read(ctx, desired) {
    const named = desired.tables ?? {};
    const ufwNamed = desired.ufw_rules !== undefined;
    const ufw_rules = ufwNamed ? readUfwRules(ctx.settings) : undefined;
    if (!Object.keys(named).length) return { tables: {}, ...(ufw_rules ? { ufw_rules } : {}) };
    const [hostOut, canon] = await Promise.all([nft(ctx.settings, ['-j', 'list', 'ruleset']), canonicalRules(desired)]);
    const rs = parseRuleset(hostOut.stdout || '{}');
    const own = new Set(Object.entries(named).map(([t, spec]) => `${familyOf(spec)} ${t}`));
    const ufwTables = new Set(
      [...rs.chains.values()].filter((c) => c.name.startsWith('ufw-')).map((c) => `${c.family} ${c.table}`),
    );
    const foreign_drops = foreignDrops(rs.chains.values(), own, ufwTables);
    let text: Map<string, string> | undefined;
    const textOf = async (r: JsonRule): Promise<string> => {
      text ??= parseTextRules((await nft(ctx.settings, ['-a', 'list', 'ruleset'])).stdout);
      return text.get(`${r.family} ${r.table} ${r.chain} ${r.handle}`) ?? `(rule handle ${r.handle})`;
    };
    const tables: Record<string, Table> = {};
    for (const [t, spec] of Object.entries(named).sort()) {
      const fam = familyOf(spec);
      if (!rs.tables.has(`${fam} ${t}`)) continue;
      const wantChains = isAbsent(spec) ? {} : chainsOf(spec);
      const chains: Record<string, Chain> = {};
      for (const [k, c] of rs.chains) {
        if (!k.startsWith(`${fam} ${t} `)) continue;
        const o = chainSpec(c);
        const hostRules = rs.rules.get(k) ?? [];
        const wantRules = wantChains[c.name]?.rules ?? [];
        const wantKeys = canon.get(k) ?? [];
        const rules: Rule[] = [];
        for (let i = 0; i < hostRules.length; i++) {
          if (i < wantRules.length && wantKeys[i] === ruleKey(hostRules[i])) rules.push(wantRules[i]);
          else rules.push(await textOf(hostRules[i]));
        }
        o.rules = rules;
        chains[c.name] = o;
      }
      tables[t] = { family: fam, chains };
    }
    return { tables, ...(ufw_rules ? { ufw_rules } : {}), foreign_drops };
  },

  faults(current, desired) {
    const out: Record<string, string> = {};
    for (const [t, spec] of Object.entries(desired.tables ?? {})) {
      if (isAbsent(spec)) continue;
      const r = refusal(t, spec, current.foreign_drops ?? [], desired.ufw_rules !== undefined);
      if (r) out[`firewall/tables/${t}`] = `${r.message}; ${r.hint}`;
    }
    return out;
  },

  plan: (diff) => (diff.collection === 'ufw_rules' ? planUfwRule(diff) : planTable(diff)),

  async apply(ctx, batch) {
    assertApplyContext(ctx);
    const isUfw = (c: Change<FirewallData>): c is Change<UfwData> => 'ufw' in c.data!;
    const ufwResults = new Map((await applyUfw(ctx, batch.filter(isUfw))).map((r) => [r.address, r]));
    const changes = batch.filter((c): c is Change<Script> => !isUfw(c));
    const byTable = new Map<string, Change<Script>[]>();
    for (const c of changes) {
      const t = c.data!.table;
      byTable.set(t, [...(byTable.get(t) ?? []), c]);
    }
    const results = new Map<Change, ChangeResult>();
    for (const [, list] of byTable) {
      // one atomic transaction per table, in phase order, without repeated lines
      const seen = new Set<string>();
      const lines = list
        .flatMap((c) => c.data!.lines)
        .map((l, i) => [l[0], i, l[1]] as const)
        .sort((a, b) => a[0] - b[0] || a[1] - b[1])
        .map((l) => l[2])
        .filter((l) => (seen.has(l) ? false : (seen.add(l), true)));
      try {
        await nft(ctx, ['-f', '-'], lines.join('\n') + '\n');
        for (const c of list) results.set(c, { address: c.address, status: 'ok' });
      } catch (err) {
        let e = toOpdError(err);
        if (err instanceof ExecFailure) {
          const msg =
            err.stderr
              .split('\n')
              .filter((l) => /Error:/.test(l))
              .map((l) => l.replace(/^\/dev\/stdin:\S+ /, ''))
              .join('; ') || err.message;
          e = new OpdError(
            'backend-failed',
            `nft: ${msg} (the whole table transaction was rolled back: nothing changed)`,
            {
              hint: /Device or resource busy/.test(msg)
                ? 'a rule elsewhere still jumps to a chain being deleted: remove that rule first'
                : 'check the chain and rule definitions with `nft -c -f`',
            },
          );
        }
        for (const c of list) results.set(c, { address: c.address, status: 'failed', error: e });
      }
    }
    return [...changes.map((c) => results.get(c)!), ...ufwResults.values()];
  },

  async show(ctx) {
    const rs = parseRuleset((await nft(ctx.settings, ['-j', 'list', 'ruleset'])).stdout || '{}');
    const text = parseTextRules((await nft(ctx.settings, ['-a', 'list', 'ruleset'])).stdout);
    const tables: Record<string, Obj> = {};
    for (const ft of [...rs.tables].sort()) {
      const [fam, t] = ft.split(' ');
      const chains: Obj = {};
      for (const [k, c] of [...rs.chains].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (!k.startsWith(`${ft} `)) continue;
        chains[c.name] = {
          ...chainSpec(c),
          rules: (rs.rules.get(k) ?? []).map((r) => text.get(`${k} ${r.handle}`) ?? ''),
        };
      }
      tables[t] = { family: fam, chains };
    }
    return { tables };
  },

  async watch(ctx, onDrift) {
    const ns = netnsOf(ctx.settings);
    return spawnLines(
      ns ? 'ip' : 'nft',
      [...(ns ? ['netns', 'exec', ns, 'nft'] : []), 'monitor', 'ruleset'],
      () => onDrift(),
      ctx.log,
    );
  },

  async doctor(ctx) {
    try {
      const rs = parseRuleset((await nft(ctx.settings, ['-j', 'list', 'ruleset'])).stdout || '{}');
      return [{ name: 'firewall: nftables', ok: true, detail: `${rs.tables.size} tables` }];
    } catch (err) {
      const e = toOpdError(err);
      return [{ name: 'firewall: nftables', ok: false, detail: e.message, hint: e.hint }];
    }
  },
};

export default plugin;
