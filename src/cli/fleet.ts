/**
 * `opd fleet put|sync|diff|status|rollout|enroll`: the operator's side of fleet mode. Every
 * command takes the endpoints from --etcd or OPD_ETCD.
 */
import { Command, Option } from 'commander';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, extname } from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';
import type { Etcd3 } from 'etcd3';
import { Range } from 'etcd3';
import { act, outputOption, stdio } from './common.js';
import { FORMAT_VERSION } from '../core/plan.js';
import { addEtcdOptions } from './etcd-options.js';
import { OpdError, EXIT } from '../core/errors.js';
import { prepareFile } from '../core/engine.js';
import { registry } from '../plugins/index.js';
import { canonical, sha256 } from '../core/canonical.js';
import { newRedactor } from '../core/validate.js';
import { compare } from '../core/diff.js';
import {
  DESIRED,
  HOSTS,
  aliveKey,
  witnessPrefix,
  checkName,
  desiredPrefix,
  enrolledKey,
  fragmentKey,
  hostPrefix,
  hostUser,
  parseEndpoints,
  parseLabels,
  statusKey,
} from '../fleet/keys.js';
import {
  conflictError,
  mergeFragments,
  selectorText,
  selects,
  type Fragment,
  type HostInfo,
  type Selector,
} from '../fleet/merge.js';
import {
  accessFrom,
  connect,
  etcdError,
  getJSON,
  copyText,
  fragmentsFor,
  materialize,
  prefixJSON,
  readFragments,
  readHosts,
} from '../fleet/store.js';
import type { HostStatus } from '../fleet/agent.js';

const etcdOptions = (cmd: Command): Command => addEtcdOptions(cmd);

async function withClient<T>(o: Record<string, unknown>, fn: (c: Etcd3) => Promise<T>): Promise<T> {
  const c = connect(accessFrom(parseEndpoints(o.etcd as string | undefined), o));
  try {
    return await fn(c);
  } catch (err) {
    throw etcdError(err, 'etcd');
  } finally {
    c.close();
  }
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The options that make FILE a fragment (put, rollout; diff with `with FILE: ` before each help). */
function fragmentOptions(cmd: Command, prefix = ''): Command {
  return cmd
    .addOption(new Option('--host <name>', `${prefix}the fragment selects this host`))
    .addOption(
      new Option(
        '--selector <k=v>',
        `${prefix}the fragment selects hosts with these labels (repeatable; all must match)`,
      ).argParser(collect),
    )
    .addOption(
      new Option('--order <n>', `${prefix}merge order among the fragments of a host (lower first)`).default('100'),
    )
    .addOption(new Option('--id <id>', `${prefix}fragment id (default: the file name without extension)`));
}

const signKeyOption = (cmd: Command): Command =>
  cmd.addOption(
    new Option(
      '--sign-key <file>',
      'sign the fragment with this ed25519 private key (env OPD_FLEET_SIGN_KEY; opd fleet keygen makes one): daemons given --fleet-keys refuse unsigned fragments',
    ),
  );

/** The operator's signing key from --sign-key / OPD_FLEET_SIGN_KEY, if any. */
async function signingKey(o: Record<string, unknown>) {
  const file = (o.signKey as string | undefined) ?? process.env.OPD_FLEET_SIGN_KEY;
  if (!file) return undefined;
  const { loadSigningKey } = await import('../fleet/sign.js');
  return loadSigningKey(file);
}

async function trustedKeys(o: Record<string, unknown>) {
  const file = (o.keys as string | undefined) ?? process.env.OPD_FLEET_KEYS;
  if (!file)
    throw new OpdError('usage', 'no trusted operator keys', {
      hint: 'give --keys FILE (the operator public keys the daemons trust) or set OPD_FLEET_KEYS',
    });
  const { loadTrustedKeys } = await import('../fleet/sign.js');
  return loadTrustedKeys(file, '--keys');
}

const signedText = (f: Fragment) => (f.signature ? `signed by ${f.signature.key}` : 'unsigned');

function selectorFrom(o: Record<string, unknown>): Selector {
  const host = o.host as string | undefined;
  const sel = o.selector as string[] | undefined;
  if (host && sel?.length) throw new OpdError('usage', 'give either --host NAME or --selector k=v, not both');
  if (host) return { host: checkName('host', host) };
  const labels = parseLabels(sel, '--selector');
  if (!Object.keys(labels).length)
    throw new OpdError('usage', 'a fragment needs --host NAME or --selector k=v', {
      hint: 'opd fleet put role-kvm.yaml --selector role=kvm',
    });
  return { labels };
}

/** Validate a document file (exit 65 when invalid) and make the fragment record. */
async function fragmentFrom(file: string, o: Record<string, unknown>): Promise<Fragment> {
  const prep = await prepareFile(registry, file);
  const id = checkName('fragment id', (o.id as string | undefined) ?? basename(file, extname(file)));
  const order = o.order === undefined ? 100 : Number(o.order);
  if (!Number.isInteger(order))
    throw new OpdError('usage', `--order needs a whole number, got ${JSON.stringify(o.order)}`);
  const document = { version: prep.doc.version, plugins: prep.doc.plugins };
  const f: Fragment = {
    id,
    order,
    selector: selectorFrom(o),
    document,
    hash: sha256(canonical(document)),
    put_at: new Date().toISOString(),
  };
  const key = await signingKey(o);
  if (!key) return f;
  const { signFragment } = await import('../fleet/sign.js');
  return signFragment(f, key);
}

/** Per-resource view of a document: address → spec. */
function resources(doc: Fragment['document']): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [p, sec] of Object.entries(doc.plugins ?? {}))
    for (const [c, coll] of Object.entries(sec ?? {}))
      if (coll && typeof coll === 'object' && !Array.isArray(coll))
        for (const [n, v] of Object.entries(coll as Record<string, unknown>)) out.set(`${p}/${c}/${n}`, v);
      else out.set(`${p}/${c}`, coll);
  return out;
}

function docChanges(before: Fragment['document'], after: Fragment['document']): string[] {
  const r = newRedactor();
  const a = resources(before);
  const b = resources(after);
  const lines: string[] = [];
  for (const addr of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const [plugin, coll] = addr.split('/');
    const x = a.get(addr);
    const y = b.get(addr);
    if (canonical(x) === canonical(y)) continue;
    if (x === undefined) lines.push(`  + ${addr}`);
    else if (y === undefined) lines.push(`  - ${addr} (no longer managed)`);
    else {
      const ops = r.ops(plugin, coll, compare(x as object, y as object));
      lines.push(
        `  ~ ${addr}: ${ops.map((op) => `${op.op} ${op.path}${'value' in op ? ` = ${JSON.stringify(op.value)}` : ''}`).join('; ')}`,
      );
    }
  }
  return lines;
}

interface Row {
  host: string;
  alive: boolean;
  converged: boolean;
  /** the labels that select fragments (fixed at enrollment for an enrolled host) */
  labels: Record<string, string>;
  enrolled: boolean;
  /** what the daemon announces (--label): shown, never selecting an enrolled host */
  announced_labels: Record<string, string>;
  fragments: string[];
  expected: string;
  document: string | null;
  failing: HostStatus['failing'];
  /** fragments the host refused (signature check): never applied */
  refused: HostStatus['refused'];
  /** whether the host verifies fragments against trusted operator keys (null: no status yet) */
  verified: boolean | null;
  drift_corrected: number;
  last_run: HostStatus['last_run'];
  error: string | null;
  audit_head: HostStatus['audit_head'];
  updated_at: string | null;
}

async function rows(c: Etcd3, only?: Set<string>): Promise<Row[]> {
  const hosts = await readHosts(c);
  const frs = await readFragments(c);
  const out: Row[] = [];
  for (const h of hosts) {
    if (only && !only.has(h.host)) continue;
    const copies = await prefixJSON<Fragment>(c, desiredPrefix(h.host));
    // what the host should have: the fragments that select it now, whatever copies it was given
    const want = fragmentsFor(frs, h);
    const m = mergeFragments(want);
    const behind = want.flatMap((f) => {
      const have = copies.get(f.id);
      if (have === undefined) return [`${f.id}: not received`];
      return canonical(have) === canonical(JSON.parse(copyText(f))) ? [] : [`${f.id}: an older copy`];
    });
    for (const id of copies.keys()) if (!want.some((f) => f.id === id)) behind.push(`${id}: no longer selects it`);
    const st = await getJSON<HostStatus>(c, statusKey(h.host));
    const alive = (await c.get(aliveKey(h.host)).string()) !== null;
    const stale = behind.length
      ? `its fragment copies are behind the fragments that select it (${behind.join('; ')}): its daemon writes them itself where etcd lets it read the fragments, else \`opd fleet sync\` does`
      : null;
    const error = m.conflict
      ? conflictError(m.conflict, h.host).message
      : [stale, st?.error].filter(Boolean).join('; ') || null;
    out.push({
      host: h.host,
      alive,
      converged: !m.conflict && !stale && !!st?.converged && st.document === m.hash,
      labels: h.labels,
      enrolled: !!h.enrolled,
      announced_labels: h.announced ?? {},
      fragments: m.fragments,
      expected: m.hash,
      document: st?.document ?? null,
      failing: st?.failing ?? [],
      refused: st?.refused ?? [],
      verified: st ? st.verified === true : null,
      drift_corrected: st?.drift_corrected ?? 0,
      last_run: st?.last_run ?? null,
      error,
      audit_head: st?.audit_head ?? null,
      updated_at: st?.updated_at ?? null,
    });
  }
  return out;
}

const labelText = (l: Record<string, string>) =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

const ago = (iso: string | undefined | null) =>
  iso ? `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))}s ago` : '-';

export function fleetCommand(): Command {
  const fleet = new Command('fleet').description(
    'many hosts converged from etcd: fragments, status, rollouts, host credentials',
  );

  fleet.addCommand(
    signKeyOption(
      fragmentOptions(
        etcdOptions(
          new Command('put')
            .description(
              'validate a document (exit 65 when invalid) and store it as a fragment for a host or a label selector',
            )
            .argument('<file>'),
        ),
      ),
    ).action(
      act(async (file: string, _o: Record<string, unknown>, cmd: Command) => {
        const o = cmd.optsWithGlobals();
        const f = await fragmentFrom(file, o);
        return withClient(o, async (c) => {
          await c.put(fragmentKey(f.id)).value(JSON.stringify(f));
          const frs = await readFragments(c);
          const hosts = await readHosts(c);
          await materialize(c, frs, hosts);
          const sel = hosts.filter((h) => selects(f, h));
          stdio.out(
            `stored fragment ${f.id} (${selectorText(f.selector)}, order ${f.order}, document ${f.hash.slice(0, 12)}, ${signedText(f)}) for ${sel.length} host${sel.length === 1 ? '' : 's'}${sel.length ? `: ${sel.map((h) => h.host).join(', ')}` : ''}`,
          );
          for (const h of sel) {
            const m = mergeFragments(frs.filter((x) => selects(x, h)));
            if (m.conflict) stdio.err(`opd: warning: ${conflictError(m.conflict, h.host).message}`);
          }
          return EXIT.ok;
        });
      }),
    ),
  );

  fleet.addCommand(
    etcdOptions(
      new Command('sync').description(
        "repair: rewrite every host's fragment copies from the fragments and the hosts' labels (daemons without etcd auth write their own, enroll writes an enrolled host's)",
      ),
    ).action(
      act(async (_o: Record<string, unknown>, cmd: Command) => {
        const o = cmd.optsWithGlobals();
        return withClient(o, async (c) => {
          const changed = await materialize(c);
          stdio.out(
            changed.length
              ? `updated ${changed.length} host${changed.length === 1 ? '' : 's'}: ${changed.join(', ')}`
              : 'every host has its fragments',
          );
          return EXIT.ok;
        });
      }),
    ),
  );

  fleet.addCommand(
    etcdOptions(
      new Command('delete')
        .description('remove a fragment (its resources are then no longer managed on the hosts it selected)')
        .argument('<id>'),
    ).action(
      act(async (id: string, _o: Record<string, unknown>, cmd: Command) => {
        const o = cmd.optsWithGlobals();
        return withClient(o, async (c) => {
          const r = await c.delete().key(fragmentKey(checkName('fragment id', id)));
          if (Number(r.deleted) === 0)
            throw new OpdError('usage', `no fragment ${id}`, {
              hint: 'opd fleet status lists the fragments of each host',
            });
          await materialize(c);
          stdio.out(`deleted fragment ${id}`);
          return EXIT.ok;
        });
      }),
    ),
  );

  fleet.addCommand(
    fragmentOptions(
      etcdOptions(
        new Command('diff')
          .description(
            "what each host's document would change (with FILE: if FILE were put); exit 2 when something would change",
          )
          .argument('[file]'),
      ),
      'with FILE: ',
    ).action(
      act(async (file: string | undefined, _o: Record<string, unknown>, cmd: Command) => {
        const o = cmd.optsWithGlobals();
        const f = file ? await fragmentFrom(file, o) : undefined;
        return withClient(o, async (c) => {
          const frs = await readFragments(c);
          const proposed = f ? [...frs.filter((x) => x.id !== f.id), f] : frs;
          let pending = 0;
          for (const h of await readHosts(c)) {
            const copies = [...(await prefixJSON<Fragment>(c, desiredPrefix(h.host))).values()];
            const now = mergeFragments(copies);
            const next = mergeFragments(proposed.filter((x) => selects({ ...x, only_hosts: undefined }, h)));
            const st = await getJSON<HostStatus>(c, statusKey(h.host));
            if (next.conflict) {
              pending++;
              stdio.out(`${h.host}: CONFLICT: ${conflictError(next.conflict, h.host).message}`);
              continue;
            }
            const lines = docChanges(now.document, next.document);
            const behind = !st || st.document !== now.hash;
            if (!lines.length && !behind) continue;
            pending++;
            stdio.out(
              `${h.host}:${behind ? ` not converged to its current fragments yet (reports ${st?.document?.slice(0, 12) ?? 'nothing'}, expected ${now.hash.slice(0, 12)})` : ''}`,
            );
            for (const l of lines) stdio.out(l);
          }
          if (!pending) stdio.out('no changes: every host is converged to its fragments');
          return pending ? EXIT.changesPending : EXIT.ok;
        });
      }),
    ),
  );

  fleet.addCommand(
    etcdOptions(
      new Command('status').description(
        'one row per host: alive, converged to the fragments that select it now (one not received yet: not converged), failing, drift, last run',
      ),
    )
      .addOption(outputOption(['text', 'json'], 'text'))
      .action(
        act(async (_o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          return withClient(o, async (c) => {
            const rs = await rows(c);
            if (o.output === 'json') {
              stdio.out(JSON.stringify({ format_version: FORMAT_VERSION, hosts: rs }, null, 2));
              return EXIT.ok;
            }
            const table = [['HOST', 'ALIVE', 'CONVERGED', 'FAILING', 'DRIFT', 'LAST RUN', 'FRAGMENTS', 'LABELS']];
            for (const r of rs)
              table.push([
                r.host,
                r.alive ? 'yes' : 'no',
                r.converged ? 'yes' : 'no',
                String(r.failing.length),
                String(r.drift_corrected),
                r.last_run ? `${r.last_run.status} ${ago(r.last_run.at)}` : '-',
                r.fragments.join(',') || '-',
                labelText(r.labels) || '-',
              ]);
            const w = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
            for (const row of table)
              stdio.out(
                row
                  .map((x, i) => x.padEnd(w[i]))
                  .join('  ')
                  .trimEnd(),
              );
            for (const r of rs) {
              if (
                r.enrolled &&
                canonical(r.announced_labels) !== canonical(r.labels) &&
                Object.keys(r.announced_labels).length
              )
                stdio.out(
                  `${r.host}: announces labels ${labelText(r.announced_labels)}; its enrolled labels ${labelText(r.labels) || '(none)'} select its fragments (opd fleet enroll ${r.host} --label … changes them)`,
                );
              if (r.error) stdio.out(`${r.host}: ${r.error}`);
              for (const f of r.failing) stdio.out(`${r.host}: ${f.address}: ${f.error}`);
            }
            return EXIT.ok;
          });
        }),
      ),
  );

  fleet.addCommand(
    signKeyOption(
      fragmentOptions(
        etcdOptions(
          new Command('rollout')
            .description(
              'put a fragment host by host in batches, wait for each batch to converge, halt when more than --max-failed hosts fail',
            )
            .argument('<file>'),
        ),
      ),
    )
      .addOption(new Option('--batch <n>', 'hosts per batch').default('1'))
      .addOption(new Option('--max-failed <k>', 'halt once more than this many hosts failed').default('0'))
      .addOption(
        new Option(
          '--timeout <seconds>',
          'a host that has not converged this long after its batch started counts as failed',
        ).default('300'),
      )
      .action(
        act(async (file: string, _o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const f = await fragmentFrom(file, o);
          const batch = Number(o.batch);
          const maxFailed = Number(o.maxFailed);
          const timeoutMs = Number(o.timeout) * 1000;
          if (!Number.isInteger(batch) || batch < 1) throw new OpdError('usage', '--batch needs a whole number >= 1');
          if (!Number.isInteger(maxFailed) || maxFailed < 0)
            throw new OpdError('usage', '--max-failed needs a whole number >= 0');
          if (!(timeoutMs > 0)) throw new OpdError('usage', '--timeout needs a number of seconds > 0');
          return withClient(o, async (c) => rollout(c, f, batch, maxFailed, timeoutMs));
        }),
      ),
  );

  fleet.addCommand(
    etcdOptions(
      new Command('enroll')
        .description(
          "create a host's etcd user and role: read its own fragment copies, write its own status (needs etcd's root user)",
        )
        .argument('<name>'),
    )
      .addOption(
        new Option(
          '--label <k=v>',
          "the host's labels (repeatable): they alone select its fragments; what its daemon announces is only shown",
        ).argParser(collect),
      )
      .addOption(
        new Option('--password-out <file>', 'write the new password to this file (mode 0600) instead of stdout'),
      )
      .action(
        act(async (name: string, _o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const host = checkName('host', name);
          const labels = parseLabels(o.label as string[] | undefined, '--label');
          const password = randomBytes(18).toString('base64url');
          return withClient(o, async (c) => {
            const user = hostUser(host);
            try {
              await c.user(user).create(password);
            } catch (err) {
              if (!/exist/i.test((err as Error).message)) throw err;
              await c.user(user).setPassword(password);
            }
            try {
              await c.role(user).create();
            } catch (err) {
              if (!/exist/i.test((err as Error).message)) throw err;
            }
            // read its fragment copies and its witness; write its status, liveness and published head.
            // Nothing else: not the enrolled labels, not another host's keys, not the witness.
            await c.role(user).grant([
              { permission: 'Read', range: Range.prefix(desiredPrefix(host)) },
              { permission: 'Read', range: Range.prefix(witnessPrefix(host)) },
              { permission: 'Readwrite', range: Range.prefix(hostPrefix(host)) },
            ]);
            await c.user(user).addRole(user);
            await c.put(enrolledKey(host)).value(JSON.stringify({ labels, enrolled_at: new Date().toISOString() }));
            await materialize(c);
            if (o.passwordOut) {
              writeFileSync(o.passwordOut as string, password + '\n', { mode: 0o600 });
              stdio.out(
                `enrolled ${host}: etcd user ${user} (read ${desiredPrefix(host)}, write ${hostPrefix(host)}); password in ${o.passwordOut}`,
              );
            } else stdio.out(`enrolled ${host}: etcd user ${user} password ${password}`);
            return EXIT.ok;
          });
        }),
      ),
  );

  fleet.addCommand(
    etcdOptions(
      new Command('relabel')
        .description(
          "change the labels of an enrolled host (they alone select its fragments) and rewrite the hosts' copies; its credentials stay",
        )
        .argument('<name>'),
    )
      .addOption(new Option('--label <k=v>', "the host's labels (repeatable; none: no labels)").argParser(collect))
      .action(
        act(async (name: string, _o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const host = checkName('host', name);
          const labels = parseLabels(o.label as string[] | undefined, '--label');
          return withClient(o, async (c) => {
            const cur = await getJSON<{ labels?: Record<string, string>; enrolled_at?: string }>(c, enrolledKey(host));
            if (!cur)
              throw new OpdError('usage', `host ${host} is not enrolled`, {
                hint: `opd fleet enroll ${host} --label k=v creates its credentials and fixes its labels`,
              });
            await c
              .put(enrolledKey(host))
              .value(JSON.stringify({ ...cur, labels, relabeled_at: new Date().toISOString() }));
            const changed = await materialize(c);
            stdio.out(
              `${host}: labels ${labelText(labels) || '(none)'}${changed.length ? `; updated ${changed.join(', ')}` : ''}`,
            );
            return EXIT.ok;
          });
        }),
      ),
  );

  fleet.addCommand(
    new Command('keygen')
      .description(
        "make the operator's ed25519 signing key pair: FILE (private, mode 0600: give it to put/rollout as --sign-key) and FILE.pub (install it on every host as the daemon's --fleet-keys)",
      )
      .requiredOption('--out <file>', 'where to write the private key (the public key goes to FILE.pub)')
      .action(
        act(async (_o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const out = o.out as string;
          const { generateKeyPairSync } = await import('node:crypto');
          const { keyId } = await import('../fleet/sign.js');
          for (const f of [out, `${out}.pub`])
            if (existsSync(f))
              throw new OpdError('usage', `${f} exists; opd fleet keygen never overwrites a key`, {
                hint: 'give --out a new file name (a rotation keeps the old key until every fragment is re-signed)',
              });
          const { publicKey, privateKey } = generateKeyPairSync('ed25519');
          writeFileSync(out, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
          writeFileSync(`${out}.pub`, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' });
          stdio.out(`key ${keyId(publicKey)}: private key in ${out}, public key in ${out}.pub`);
          return EXIT.ok;
        }),
      ),
  );

  fleet.addCommand(
    etcdOptions(
      new Command('verify').description(
        "check every stored fragment and every host's copy against the trusted operator keys: signed by one of them, unchanged since, and (copies) selecting the host they are kept for; exit 1 when one fails",
      ),
    )
      .addOption(new Option('--keys <file>', 'the trusted operator public keys (PEM; env OPD_FLEET_KEYS)'))
      .action(
        act(async (_o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const trusted = await trustedKeys(o);
          const { verifyFragment, verifyCopy } = await import('../fleet/sign.js');
          return withClient(o, async (c) => {
            let bad = 0;
            const byKey = new Map<string, number>();
            const frs = await readFragments(c);
            for (const f of [...frs].sort((a, b) => (a.id < b.id ? -1 : 1))) {
              const why = verifyFragment(f, trusted);
              if (why) {
                bad++;
                stdio.out(`fragment ${f.id}: REFUSED: ${why}`);
              } else {
                byKey.set(f.signature!.key, (byKey.get(f.signature!.key) ?? 0) + 1);
                stdio.out(`fragment ${f.id}: ok, signed by ${f.signature!.key}`);
              }
            }
            const hosts = new Map((await readHosts(c)).map((h) => [h.host, h]));
            const copies = await prefixJSON<Fragment>(c, DESIRED);
            for (const [k, f] of copies) {
              const [host, id] = k.split('/');
              const h = hosts.get(host);
              const why =
                verifyCopy(f, trusted, host, h?.labels ?? {}) ??
                (f.id !== id ? `kept under ${id} but is ${f.id}` : null);
              if (why) {
                bad++;
                stdio.out(`copy ${host}/${id}: REFUSED: ${why}`);
              }
            }
            stdio.out(
              `${frs.length} fragment${frs.length === 1 ? '' : 's'} and ${copies.size} host cop${copies.size === 1 ? 'y' : 'ies'} checked: ${bad ? `${bad} refused` : 'all signed by trusted keys'}${
                byKey.size
                  ? ` (${[...byKey]
                      .sort()
                      .map(([k, n]) => `${k}: ${n}`)
                      .join(', ')})`
                  : ''
              }`,
            );
            return bad ? EXIT.failed : EXIT.ok;
          });
        }),
      ),
  );

  fleet.addCommand(
    signKeyOption(
      etcdOptions(
        new Command('resign').description(
          'key rotation: re-sign every stored fragment with --sign-key after checking it against the trusted keys (--keys); changes nothing when one fails',
        ),
      ),
    )
      .addOption(new Option('--keys <file>', 'the operator public keys trusted now (PEM; env OPD_FLEET_KEYS)'))
      .action(
        act(async (_o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const trusted = await trustedKeys(o);
          const key = await signingKey(o);
          if (!key)
            throw new OpdError('usage', 'opd fleet resign needs --sign-key FILE (the new key)', {
              hint: 'opd fleet keygen --out FILE makes one; add FILE.pub to the hosts’ --fleet-keys first',
            });
          const { verifyFragment, signFragment } = await import('../fleet/sign.js');
          return withClient(o, async (c) => {
            const frs = await readFragments(c);
            const refused = frs
              .map((f) => [f.id, verifyFragment(f, trusted)] as const)
              .filter(([, why]) => why !== null);
            if (refused.length) {
              for (const [id, why] of refused) stdio.err(`opd: fragment ${id}: ${why}`);
              throw new OpdError(
                'refused',
                `${refused.length} fragment${refused.length === 1 ? '' : 's'} failed the check; nothing re-signed`,
                {
                  hint: 'put each refused fragment again from its file with --sign-key, or delete it',
                },
              );
            }
            for (const f of frs) await c.put(fragmentKey(f.id)).value(JSON.stringify(signFragment(f, key)));
            const changed = await materialize(c);
            stdio.out(
              `re-signed ${frs.length} fragment${frs.length === 1 ? '' : 's'} with ${key.id}; updated the copies of ${changed.length} host${changed.length === 1 ? '' : 's'}`,
            );
            return EXIT.ok;
          });
        }),
      ),
  );

  fleet.addCommand(
    etcdOptions(
      new Command('witness').description(
        "the operator's copier of audit heads: follows every head the hosts publish and keeps the highest one under /opd/witness/HOST/, where a host's credentials may only read (run it as a service with operator credentials; `opd audit verify --witness` checks against it)",
      ),
    )
      .addOption(new Option('--once', 'one catch-up pass over the heads etcd still holds, then exit'))
      .addOption(
        new Option(
          '--forget <host>',
          "drop HOST's witnessed head and conflict records (a host reinstalled on purpose: its next head starts a new history)",
        ),
      )
      .action(
        act(async (_o: Record<string, unknown>, cmd: Command) => {
          const o = cmd.optsWithGlobals();
          const { copyOnce, follow, readCopierState, writeCopierState } = await import('../fleet/witness.js');
          const c = connect(accessFrom(parseEndpoints(o.etcd as string | undefined), o));
          const show = (e: import('../fleet/witness.js').CopyEvent) => {
            if (e.outcome === 'new')
              stdio.out(
                `witnessed ${e.host} seq ${e.head.seq} (hash ${e.head.hash.slice(0, 12)}, revision ${e.revision})`,
              );
            else if (e.outcome === 'conflict')
              stdio.err(
                `opd: witness: ${e.host}: head seq ${e.head.seq} at revision ${e.revision} contradicts the witnessed one (kept as a conflict record)`,
              );
          };
          try {
            if (o.forget) {
              const host = checkName('host', o.forget as string);
              const r = await c.delete().prefix(witnessPrefix(host));
              stdio.out(`forgot the witness of ${host} (${Number(r.deleted)} keys)`);
              return EXIT.ok;
            }
            const state = (await readCopierState(c)) ?? { revision: '0', updated_at: '', gaps: [] };
            // resume where the last copier stopped: etcd replays the history since, in order
            // (compacted meanwhile: follow() records the gap and reads what is left); else read
            // every head and the versions of it etcd still holds, then follow from there
            const from = !o.once && state.revision !== '0' ? state.revision : await copyOnce(c, show);
            if (o.once) {
              if (BigInt(from) > BigInt(state.revision)) state.revision = from;
              state.updated_at = new Date().toISOString();
              await writeCopierState(c, state);
              stdio.out(`witness: caught up to revision ${from}`);
              return EXIT.ok;
            }
            const f = await follow(c, {
              from,
              state,
              onEvent: show,
              onGap: (g) =>
                stdio.err(
                  `opd: warning: witness: revisions ${g.from}-${g.to} were compacted before the copier saw them; heads published only then are not witnessed`,
                ),
              onError: (e) => stdio.err(`opd: warning: witness: ${etcdError(e, 'copying a head').message}`),
            });
            stdio.out(`witness: following the hosts' heads from revision ${from}`);
            await new Promise<void>((resolve, reject) => {
              const stop = () => void f.stop().then(resolve, reject);
              process.once('SIGTERM', stop);
              process.once('SIGINT', stop);
              f.done.then(resolve, reject);
            });
            return EXIT.ok;
          } catch (err) {
            throw etcdError(err, 'witness');
          } finally {
            c.close();
          }
        }),
      ),
  );
  return fleet;
}

async function rollout(
  c: Etcd3,
  f: Fragment,
  batchSize: number,
  maxFailed: number,
  timeoutMs: number,
): Promise<number> {
  const hosts = (await readHosts(c)).filter((h) => selects({ ...f, only_hosts: undefined }, h));
  if (!hosts.length)
    throw new OpdError('usage', `no host matches ${selectorText(f.selector)}`, {
      hint: 'opd fleet status lists the hosts and their labels',
    });
  const batches: HostInfo[][] = [];
  for (let i = 0; i < hosts.length; i += batchSize) batches.push(hosts.slice(i, i + batchSize));
  const given: string[] = [];
  const failed: string[] = [];
  const ok: string[] = [];
  stdio.out(
    `rollout ${f.id} (${selectorText(f.selector)}, document ${f.hash.slice(0, 12)}): ${hosts.length} host${hosts.length === 1 ? '' : 's'} in ${batches.length} batch${batches.length === 1 ? '' : 'es'} of ${batchSize}, halting after more than ${maxFailed} failure${maxFailed === 1 ? '' : 's'}`,
  );
  for (const [i, b] of batches.entries()) {
    given.push(...b.map((h) => h.host));
    const rec: Fragment = { ...f, only_hosts: [...given].sort() };
    const started = new Date().toISOString();
    await c.put(fragmentKey(f.id)).value(JSON.stringify(rec));
    const frs = await readFragments(c);
    await materialize(c, frs);
    const expected = new Map(b.map((h) => [h.host, mergeFragments(frs.filter((x) => selects(x, h)))]));
    stdio.out(`batch ${i + 1}/${batches.length}: ${b.map((h) => h.host).join(', ')}`);
    const pending = new Set(b.map((h) => h.host));
    for (const [h, m] of expected)
      if (m.conflict) {
        pending.delete(h);
        failed.push(h);
        stdio.out(`  ${h}: FAILED: ${conflictError(m.conflict, h).message}`);
      }
    const t0 = Date.now();
    await waitHosts(c, pending, timeoutMs, (h, st) => {
      const m = expected.get(h)!;
      if (st.converged && st.document === m.hash) {
        ok.push(h);
        stdio.out(`  ${h}: converged (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        return true;
      }
      const fresh = st.updated_at > started && st.last_run && st.last_run.at > started;
      if (fresh && st.desired === m.hash && st.document === m.hash && (st.failing.length || st.error)) {
        failed.push(h);
        stdio.out(`  ${h}: FAILED: ${st.error ?? st.failing.map((x) => `${x.address}: ${x.error}`).join('; ')}`);
        return true;
      }
      if (fresh && st.error && st.desired !== m.hash && /fragments .* both set/.test(st.error)) {
        failed.push(h);
        stdio.out(`  ${h}: FAILED: ${st.error}`);
        return true;
      }
      return false;
    });
    for (const h of [...pending].sort()) {
      failed.push(h);
      stdio.out(`  ${h}: FAILED: not converged within ${timeoutMs / 1000} s`);
    }
    if (failed.length > maxFailed) {
      const rest = hosts.map((h) => h.host).filter((h) => !given.includes(h));
      stdio.out(
        `halted: ${failed.length} host${failed.length === 1 ? '' : 's'} failed (${failed.sort().join(', ')}), more than --max-failed ${maxFailed}; ${ok.length} converged; not given the change: ${rest.join(', ') || 'none'}`,
      );
      stdio.out(
        `the fragment stays limited to the hosts that got it; fix and run the rollout again, or opd fleet delete ${f.id}`,
      );
      return EXIT.failed;
    }
  }
  // done: the fragment now selects by its selector alone (hosts joining later get it too)
  await c.put(fragmentKey(f.id)).value(JSON.stringify({ ...f }));
  await materialize(c);
  stdio.out(`rollout complete: ${ok.length} converged, ${failed.length} failed (at most ${maxFailed} allowed)`);
  return failed.length ? EXIT.failed : EXIT.ok;
}

/**
 * Wait until `done(host, status)` says yes for every pending host (removed from `pending`), or
 * the deadline. Driven by a watch on the hosts' keys, with a re-read every second as a safety
 * net while an etcd member is away.
 */
async function waitHosts(
  c: Etcd3,
  pending: Set<string>,
  timeoutMs: number,
  done: (h: string, st: HostStatus) => boolean,
): Promise<void> {
  if (!pending.size) return;
  const deadline = Date.now() + timeoutMs;
  let wake: () => void = () => {};
  const w = await c
    .watch()
    .prefix(HOSTS)
    .create()
    .catch(() => undefined);
  w?.on('put', () => wake());
  try {
    while (pending.size && Date.now() < deadline) {
      for (const h of [...pending]) {
        try {
          const st = await getJSON<HostStatus>(c, statusKey(h));
          if (st && done(h, st)) pending.delete(h);
        } catch {
          /* a member is away: the next round asks another */
        }
      }
      if (!pending.size) break;
      const ac = new AbortController();
      wake = () => ac.abort();
      await sleep(Math.min(1_000, Math.max(0, deadline - Date.now())), undefined, { signal: ac.signal }).catch(
        () => undefined,
      );
    }
  } finally {
    await w?.cancel().catch(() => undefined);
  }
}
