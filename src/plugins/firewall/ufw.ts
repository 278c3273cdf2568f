/**
 * ufw beside opd's nftables tables. In nftables every base chain on a hook sees the packet and a
 * drop in any of them is final, so where ufw is active (it drives iptables-nft: `ip filter INPUT`
 * with policy drop) an accept in opd's own table opens nothing. Where ufw is the host's front-end,
 * opd manages ufw rules (`firewall.ufw_rules`: it runs `ufw allow …` with the comment
 * `opd:<name>`, and reads them back from ufw's own rules files), and it refuses accept rules of its
 * own tables on a hook where a foreign base chain drops (see foreignDrops / refusal).
 */
import { readFileSync } from 'node:fs';
import type { ApplyContext, Change, ChangeResult, Obj, ResourceDiff, Settings } from '../../core/plugin.js';
import type { Table, UfwRule } from './section.gen.js';
import { OpdError, toOpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { ExecFailure, runMutate } from '../../exec.js';
import { netnsOf } from '../../host/netns.js';
import { TUNABLES, UFW_DIR } from './manifest.js';
import { settingOf } from '../../core/manifest.js';

const UFW_HINT = 'install ufw (apt-get install ufw), or manage the ports with firewall.tables instead';
const MARK = 'opd:';

/** A ufw rule, generated from schema/firewall.schema.json (npm run gen:types); the port is a string after normalize (`8000:8100`). */
export type UfwSpec = Omit<UfwRule, 'port'> & { port?: string };

function ufwDir(settings: Settings): string {
  return settingOf(settings, UFW_DIR)!;
}

const hexDecode = (h: string) => Buffer.from(h, 'hex').toString('utf8');
const ANY = new Set(['0.0.0.0/0', '::/0', 'any']);

/** One `### tuple ###` line of ufw's user.rules / user6.rules (action proto dport dst sport src dir[_iface]). */
export function parseTuple(line: string): { name: string; spec: UfwSpec } | undefined {
  const m = /^### tuple ### (.*?)(?: comment=([0-9a-fA-F]*))?\s*$/.exec(line);
  if (!m || !m[2]) return undefined;
  const comment = hexDecode(m[2]);
  if (!comment.startsWith(MARK)) return undefined;
  const f = m[1].trim().split(/\s+/);
  if (f.length !== 7) return undefined; // application rules (9 fields) are never opd's
  const [action, proto, dport, , , src, dir] = f;
  if (action.includes(':')) return undefined; // route (forward) rules are never opd's
  // what ufw wrote for a rule of opd's: one of the schema's actions and protocols
  const spec: UfwSpec = {
    action: action.replace(/_log(-all)?$/, '') as UfwSpec['action'],
    proto: proto as UfwSpec['proto'],
  };
  if (dport !== 'any') spec.port = dport;
  if (!ANY.has(src)) spec.from = src;
  if (dir.startsWith('in_')) spec.interface = dir.slice(3);
  return { name: comment.slice(MARK.length), spec };
}

/** opd's ufw rules by name, from ufw's own rules files (IPv4 and IPv6 copies merged). */
export function readUfwRules(settings: Settings): Record<string, UfwSpec> {
  const out: Record<string, UfwSpec> = {};
  for (const f of ['user.rules', 'user6.rules']) {
    let text: string;
    try {
      text = readFileSync(`${ufwDir(settings)}/${f}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const r = parseTuple(line);
      if (r) out[r.name] = { ...out[r.name], ...r.spec };
    }
  }
  return out;
}

/** ufw's own switch (ENABLED=yes in ufw.conf). */
export function ufwEnabled(settings: Settings): boolean {
  try {
    return /^\s*ENABLED\s*=\s*yes\s*$/m.test(readFileSync(`${ufwDir(settings)}/ufw.conf`, 'utf8'));
  } catch {
    return false;
  }
}

/** The document's spec as compared: the port as a string, proto any when not named. */
export function normalizeUfwRule(spec: unknown): unknown {
  if (!isObj(spec) || spec.state === 'absent') return spec;
  const out: Obj = { ...spec };
  if (typeof out.port === 'number') out.port = String(out.port);
  if (typeof out.port === 'string') out.port = out.port.replace(/-/g, ':');
  if (out.proto === undefined) out.proto = 'any';
  if (out.action === undefined) out.action = 'allow';
  return out;
}

/** `ufw allow in on IF proto tcp from SRC to any port P` (without the comment). */
export function ruleArgs(spec: UfwSpec): string[] {
  const a = [String(spec.action ?? 'allow'), 'in'];
  if (spec.interface) a.push('on', spec.interface);
  if (spec.proto && spec.proto !== 'any') a.push('proto', spec.proto);
  a.push('from', spec.from ?? 'any', 'to', 'any');
  if (spec.port) a.push('port', spec.port);
  return a;
}

function describe(spec: UfwSpec): string {
  return `ufw ${ruleArgs(spec).join(' ')}`;
}

export interface UfwData {
  ufw: string[][];
}

export function planUfwRule(diff: ResourceDiff): Change<UfwData>[] {
  const base = { resource: diff.address, plugin: 'firewall', address: diff.address };
  const mark = ['comment', `${MARK}${diff.name}`];
  if (diff.action === 'delete') {
    const cur = diff.current as UfwSpec;
    return [
      {
        ...base,
        action: 'delete',
        summary: describe(cur),
        ops: diff.ops,
        data: { ufw: [['delete', ...ruleArgs(cur)]] } satisfies UfwData,
      },
    ];
  }
  const want = diff.desired as UfwSpec;
  if (diff.action === 'create')
    return [
      {
        ...base,
        action: 'create',
        summary: describe(want),
        ops: diff.ops,
        data: { ufw: [[...ruleArgs(want), ...mark]] } satisfies UfwData,
      },
    ];
  const cur = { ...(diff.current as UfwSpec), ...want };
  const old = diff.current as UfwSpec;
  // a ufw rule cannot be edited: the old one goes, the new one comes (with the full old spec read back)
  return [
    {
      ...base,
      action: 'update',
      summary: `${describe(old)} → ${describe(cur)}`,
      ops: diff.ops,
      data: {
        ufw: [
          ['delete', ...ruleArgs(old)],
          [...ruleArgs(cur), ...mark],
        ],
      } satisfies UfwData,
    },
  ];
}

async function ufw(ctx: ApplyContext, args: string[]) {
  const ns = netnsOf(ctx.settings);
  const argv = ns ? ['netns', 'exec', ns, 'ufw', ...args] : args;
  try {
    return await runMutate(ctx, ns ? 'ip' : 'ufw', argv, {
      backend: 'ufw',
      installHint: UFW_HINT,
      timeout: TUNABLES.ufwMs,
    });
  } catch (err) {
    if (err instanceof ExecFailure && /exec of "ufw" failed|No such file/.test(err.stderr))
      throw new OpdError('backend-unavailable', 'ufw is not installed', { hint: UFW_HINT });
    throw err;
  }
}

/** Apply ufw changes one command at a time (ufw has no transactions); a failure fails that rule only. */
export async function applyUfw(ctx: ApplyContext, changes: Change<UfwData>[]): Promise<ChangeResult[]> {
  const out: ChangeResult[] = [];
  for (const c of changes) {
    try {
      for (const args of c.data!.ufw) await ufw(ctx, args);
      out.push({ address: c.address, status: 'ok' });
    } catch (err) {
      const e = toOpdError(err);
      out.push({
        address: c.address,
        status: 'failed',
        error: new OpdError(e.kind, e.message, {
          address: c.address,
          hint: e.hint ?? 'check the rule with `ufw --dry-run …`',
        }),
      });
    }
  }
  return out;
}

/** A base chain of another table that drops on a hook: `ip filter INPUT (ufw)`. */
export interface ForeignDrop {
  hook: string;
  family: string;
  where: string;
  ufw: boolean;
}

/**
 * The refusal: accept rules of an opd table on a filter hook where a foreign base chain drops
 * cannot take effect. Returns the message, or undefined when the table's accepts are decisive.
 */
export function refusal(
  table: string,
  spec: Table,
  drops: ForeignDrop[],
  _ufwRulesNamed = false,
): { message: string; hint: string } | undefined {
  const fam = String(spec.family ?? 'inet');
  const chains = isObj(spec.chains) ? spec.chains : {};
  for (const [c, cs] of Object.entries(chains).sort()) {
    if (!isObj(cs) || cs.state === 'absent' || typeof cs.hook !== 'string' || (cs.type ?? 'filter') !== 'filter')
      continue;
    const accepts = (Array.isArray(cs.rules) ? cs.rules : []).some((r) =>
      isObj(r) ? r.action === 'accept' : typeof r === 'string' && /\baccept\b/.test(r),
    );
    if (!accepts) continue;
    const hits = drops.filter((d) => d.hook === cs.hook && (fam === 'inet' || d.family === 'inet' || d.family === fam));
    if (!hits.length) continue;
    const who = hits.map((d) => d.where).join(', ');
    const isUfw = hits.some((d) => d.ufw);
    return {
      message: `the accept rules of chain ${c} (hook ${cs.hook}) cannot take effect: ${who} drops on the same hook what it does not accept itself, and in nftables a drop in any base chain is final`,
      hint: isUfw
        ? `ufw is this host's firewall: open the ports with firewall.ufw_rules (opd runs \`ufw allow … comment opd:<name>\`) and keep only drop/reject rules on hook ${cs.hook} in table ${table}, or disable ufw`
        : `accept the traffic in that chain too (e.g. iptables -I INPUT …), or set its policy to accept; opd does not edit tables it does not own`,
    };
  }
  return undefined;
}

/** Base chains of tables the document does not name that drop by policy (ufw's iptables-nft chains among them). */
export function foreignDrops(
  chains: Iterable<{ family: string; table: string; name: string; hook?: string; policy?: string }>,
  ownTables: Set<string>,
  ufwChains: Set<string>,
): ForeignDrop[] {
  const out: ForeignDrop[] = [];
  for (const c of chains) {
    if (!c.hook || ownTables.has(`${c.family} ${c.table}`)) continue;
    if (c.policy !== 'drop') continue;
    const ufw = ufwChains.has(`${c.family} ${c.table}`);
    out.push({
      hook: c.hook,
      family: c.family,
      where: `${c.family} ${c.table} ${c.name} (policy drop${ufw ? ', ufw' : ''})`,
      ufw,
    });
  }
  return out.sort((a, b) => (a.where < b.where ? -1 : 1));
}
