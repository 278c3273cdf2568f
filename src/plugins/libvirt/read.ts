/**
 * libvirt: reading networks, pools, volumes and domains — ONE virsh process per read (a stdin batch of list/dumpxml commands for what the document names).
 */
import type { Obj, Settings } from '../../core/plugin.js';
import { OpdError } from '../../core/errors.js';
import { isObj } from '../../core/diff.js';
import { batch, names, SAFE_NAME, virsh } from './virsh.js';
import { parseXml, projectXml, toXml, type XNode } from './xml.js';
import type { Domain, LibvirtDoc, Network, Pool, Volume } from './section.gen.js';
import { domainFromXml, networkFromXml, poolFromXml, volumeFromXml } from './model.js';

/** The section's type, generated from schema/libvirt.schema.json (npm run gen:types). */
export type LibvirtSection = LibvirtDoc & Obj;

interface Lists {
  domains: string[];
  running: Set<string>;
  domAuto: Set<string>;
  networks: string[];
  netActive: Set<string>;
  netAuto: Set<string>;
  pools: string[];
  poolActive: Set<string>;
  poolAuto: Set<string>;
}

const LIST_CMDS: string[][] = [
  ['list', '--all', '--name'],
  ['list', '--name', '--state-running'],
  ['list', '--name', '--state-paused'],
  ['list', '--all', '--name', '--autostart'],
  ['net-list', '--all', '--name'],
  ['net-list', '--name'],
  ['net-list', '--all', '--name', '--autostart'],
  ['pool-list', '--all', '--name'],
  ['pool-list', '--name'],
  ['pool-list', '--all', '--name', '--autostart'],
];

function lists(out: string[]): Lists {
  const [d, r, p, da, n, na, nau, po, pa, pau] = out.map(names);
  return {
    domains: d,
    running: new Set([...r, ...p]),
    domAuto: new Set(da),
    networks: n,
    netActive: new Set(na),
    netAuto: new Set(nau),
    pools: po,
    poolActive: new Set(pa),
    poolAuto: new Set(pau),
  };
}

type Dump =
  | { kind: 'dom' | 'net' | 'pool'; name: string }
  | { kind: 'vol'; pool: string; name: string }
  | { kind: 'vols'; pool: string };

function dumpCmd(d: Dump): string[] {
  switch (d.kind) {
    case 'dom':
      return ['dumpxml', '--inactive', d.name];
    case 'net':
      return ['net-dumpxml', '--inactive', d.name];
    case 'pool':
      return ['pool-dumpxml', '--inactive', d.name];
    case 'vol':
      return ['vol-dumpxml', '--pool', d.pool, d.name];
    case 'vols':
      return ['vol-list', '--pool', d.pool];
  }
}

function safeDump(d: Dump): boolean {
  return [(d as { name?: string }).name, (d as { pool?: string }).pool].every(
    (s) => s === undefined || SAFE_NAME.test(s),
  );
}

/** Run dumps: safe names in one batch (plus `pre` commands), others one argv process each. */
async function dumps(
  settings: Settings,
  pre: string[][],
  list: Dump[],
): Promise<{ pre: string[]; out: Map<Dump, string> }> {
  const safe = list.filter(safeDump);
  const res = await batch(settings, [...pre, ...safe.map(dumpCmd)]);
  const out = new Map<Dump, string>();
  safe.forEach((d, i) => out.set(d, res[pre.length + i]));
  for (const d of list.filter((x) => !safeDump(x))) {
    const r = await virsh(settings, dumpCmd(d), { okCodes: [0, 1] });
    out.set(d, r.exitCode === 0 ? r.stdout.trim() : '');
  }
  return { pre: res.slice(0, pre.length), out };
}

function volNames(table: string): string[] {
  // " Name   Path\n------\n vol1   /path/vol1"
  return table
    .split('\n')
    .slice(2)
    .map((l) => l.trim().split(/\s+/)[0])
    .filter(Boolean)
    .sort();
}

export function parseOrThrow(text: string, what: string): XNode {
  try {
    return parseXml(text);
  } catch (err) {
    throw new OpdError(
      'backend-failed',
      `could not parse the XML virsh printed for ${what}: ${(err as Error).message}`,
    );
  }
}

function domainState(name: string, l: Lists): Obj {
  return { running: l.running.has(name), autostart: l.domAuto.has(name) };
}

function domainCurrent(xml: XNode, desired: Domain | undefined, name: string, l: Lists): Domain {
  if (typeof desired?.xml === 'string') {
    let docTree: XNode | undefined;
    try {
      docTree = parseXml(desired.xml);
    } catch (err) {
      throw new OpdError(
        'invalid-document',
        `libvirt/domains/${name}: xml is not well-formed: ${(err as Error).message}`,
        { hint: 'fix the domain XML (one <domain> root element)' },
      );
    }
    return {
      xml: toXml(projectXml(xml, docTree)),
      ...domainState(name, l),
      ...(desired.shutdown_timeout !== undefined ? { shutdown_timeout: desired.shutdown_timeout } : {}),
    };
  }
  const cur = domainFromXml(xml);
  // interfaces are a list: compare each entry on the fields the document names for it
  if (Array.isArray(desired?.interfaces) && Array.isArray(cur.interfaces)) {
    const want = desired.interfaces;
    cur.interfaces = (cur.interfaces as Obj[]).map((c, i) => {
      const w = want[i] ?? {};
      const o: Obj = {};
      for (const k of Object.keys(c))
        if (k in w || ['network', 'bridge', 'ovs_bridge', 'user'].includes(k)) o[k] = c[k];
      return o;
    });
  }
  // shutdown_timeout steers opd (how long a graceful shutdown may take), it is not host state
  if (desired?.shutdown_timeout !== undefined) cur.shutdown_timeout = desired.shutdown_timeout;
  return { ...cur, ...domainState(name, l) };
}

export async function readSection(settings: Settings, desired: LibvirtSection, all: boolean): Promise<LibvirtSection> {
  const wantDom = Object.keys(desired.domains ?? {});
  const wantNet = Object.keys(desired.networks ?? {});
  const wantPool = Object.keys(desired.pools ?? {});
  const first: Dump[] = [
    ...wantDom.map((name) => ({ kind: 'dom' as const, name })),
    ...wantNet.map((name) => ({ kind: 'net' as const, name })),
    ...wantPool.map((name) => ({ kind: 'pool' as const, name })),
  ];
  for (const p of wantPool) {
    const spec = desired.pools![p];
    for (const v of Object.keys(isObj(spec?.volumes) ? spec.volumes : {}))
      first.push({ kind: 'vol', pool: p, name: v });
    if (all || (isObj(spec?.prune) && spec.prune.volumes === true)) first.push({ kind: 'vols', pool: p });
  }
  const r1 = await dumps(settings, LIST_CMDS, first);
  const l = lists(r1.pre);
  const got = new Map<string, string>();
  const key = (d: Dump) =>
    d.kind === 'vol' ? `vol/${d.pool}/${d.name}` : d.kind === 'vols' ? `vols/${d.pool}` : `${d.kind}/${d.name}`;
  for (const [d, t] of r1.out) got.set(key(d), t);
  // second round (prune / show): what the document does not name
  const second: Dump[] = [];
  const pr = desired.prune ?? {};
  if (all || pr.domains) for (const n of l.domains) if (!got.has(`dom/${n}`)) second.push({ kind: 'dom', name: n });
  if (all || pr.networks) for (const n of l.networks) if (!got.has(`net/${n}`)) second.push({ kind: 'net', name: n });
  if (all || pr.pools)
    for (const n of l.pools)
      if (!got.has(`pool/${n}`)) {
        second.push({ kind: 'pool', name: n });
        if (all) second.push({ kind: 'vols', pool: n });
      }
  if (second.length) for (const [d, t] of (await dumps(settings, [], second)).out) got.set(key(d), t);
  const pruneVols = (p: string) => {
    const sp = desired.pools?.[p];
    return isObj(sp?.prune) && sp.prune.volumes === true;
  };
  if (all || wantPool.some(pruneVols)) {
    // last round (show, pruned volumes): every volume of those pools
    const third: Dump[] = [];
    for (const p of l.pools)
      if (all || pruneVols(p))
        for (const v of volNames(got.get(`vols/${p}`) ?? ''))
          if (!got.has(`vol/${p}/${v}`)) third.push({ kind: 'vol', pool: p, name: v });
    if (third.length) for (const [d, t] of (await dumps(settings, [], third)).out) got.set(key(d), t);
  }

  const domains: Record<string, Domain> = {};
  const domSet = new Set(l.domains);
  for (const n of [...new Set([...wantDom, ...(all || pr.domains ? l.domains : [])])].sort()) {
    const t = got.get(`dom/${n}`);
    if (!domSet.has(n) || !t) continue;
    domains[n] = domainCurrent(parseOrThrow(t, `domain ${n}`), all ? undefined : desired.domains?.[n], n, l);
  }
  const networks: Record<string, Network> = {};
  const netSet = new Set(l.networks);
  for (const n of [...new Set([...wantNet, ...(all || pr.networks ? l.networks : [])])].sort()) {
    const t = got.get(`net/${n}`);
    if (!netSet.has(n) || !t) continue;
    networks[n] = {
      ...networkFromXml(parseOrThrow(t, `network ${n}`)),
      active: l.netActive.has(n),
      autostart: l.netAuto.has(n),
    };
  }
  const pools: Record<string, Pool> = {};
  const poolSet = new Set(l.pools);
  for (const n of [...new Set([...wantPool, ...(all || pr.pools ? l.pools : [])])].sort()) {
    const t = got.get(`pool/${n}`);
    if (!poolSet.has(n) || !t) continue;
    const volumes: Record<string, Volume> = {};
    const spec = desired.pools?.[n];
    const vnames = new Set([
      ...Object.keys(isObj(spec?.volumes) ? spec.volumes : {}),
      ...volNames(got.get(`vols/${n}`) ?? ''),
    ]);
    for (const v of [...vnames].sort()) {
      const vt = got.get(`vol/${n}/${v}`);
      if (vt) volumes[v] = volumeFromXml(parseOrThrow(vt, `volume ${n}/${v}`));
    }
    pools[n] = {
      ...poolFromXml(parseOrThrow(t, `pool ${n}`)),
      active: l.poolActive.has(n),
      autostart: l.poolAuto.has(n),
      volumes,
    };
  }
  return { networks, pools, domains };
}
