/**
 * Bad input: a corpus of invalid and hostile documents, and a property-based generator that
 * mutates valid documents. Every invalid one gives an invalid-document error (exit 65) with a
 * located message and no stack trace; through the CLI the host does not change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseText } from '../../src/core/document.js';
import { prepareLoaded } from '../../src/core/engine.js';
import { registry } from '../../src/plugins/index.js';
import { OpdError } from '../../src/core/errors.js';
import { ROOT, doc, opd, tmp } from '../helpers/opd.js';
import { startOvs, type OvsSandbox } from '../helpers/ovs.js';

const HOSTILE = [
  'br0;rm -rf /',
  '$(reboot)',
  '`id`',
  '../etc',
  '..',
  'a b',
  '-rf',
  '',
  'x'.repeat(300),
  'a\nb',
  'a\u0000b',
  'a|b',
  'a&b',
  'a>b',
  "a'b",
  'a"b',
  'a\\b',
  '*',
  'bré',
  '\u202eevil',
];

/** Every place a name goes, as a function from the hostile string to a document. */
const NAME_FIELDS: Record<string, (s: string) => unknown> = {
  'bridge name': (s) => ({ version: 1, plugins: { ovs: { bridges: { [s]: {} } } } }),
  'port name': (s) => ({ version: 1, plugins: { ovs: { bridges: { br0: { ports: { [s]: {} } } } } } }),
  'bond member name': (s) => ({
    version: 1,
    plugins: { ovs: { bridges: { br0: { ports: { b0: { interfaces: { [s]: {}, ok: {} } } } } } } },
  }),
  'patch peer': (s) => ({
    version: 1,
    plugins: { ovs: { bridges: { br0: { ports: { p0: { type: 'patch', peer: s } } } } } },
  }),
  'external_ids key': (s) => ({ version: 1, plugins: { ovs: { bridges: { br0: { external_ids: { [s]: 'x' } } } } } }),
  'depends_on address': (s) => ({ version: 1, plugins: { ovs: { bridges: { br0: { depends_on: [s] } } } } }),
};

async function expectInvalid(text: string | Buffer, file = 'bad.yaml'): Promise<OpdError> {
  let err: unknown;
  try {
    await prepareLoaded(registry, parseText(typeof text === 'string' ? Buffer.from(text) : text, file));
  } catch (e) {
    err = e;
  }
  expect(err, 'document was accepted').toBeInstanceOf(OpdError);
  const e = err as OpdError;
  expect(e.kind, e.message).toBe('invalid-document');
  expect(e.format()).not.toMatch(/\n\s+at .*:\d+:\d+/);
  return e;
}

const corpus: [string, string | Buffer][] = [];
for (const [field, make] of Object.entries(NAME_FIELDS))
  for (const s of HOSTILE) {
    // a hostile value that happens to be valid for this field (e.g. "*" nowhere) is skipped below
    corpus.push([`${field} ${JSON.stringify(s).slice(0, 30)}`, JSON.stringify(make(s))]);
  }
corpus.push(
  ['a 50 MB string', JSON.stringify({ version: 1, plugins: {}, description: 'x'.repeat(50 * 1024 * 1024) })],
  [
    'a document of UTF-16',
    Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('version: 1\nplugins: {}\n', 'utf16le')]),
  ],
  ['a Latin-1 document', Buffer.from('version: 1\nplugins: {}\ndescription: caf\xe9\n', 'latin1')],
  ['deep nesting', 'version: 1\nplugins: {}\ndescription: ' + '['.repeat(5000) + ']'.repeat(5000)],
  ['a duplicate bridge', 'version: 1\nplugins:\n  ovs:\n    bridges:\n      br0: {}\n      br0: {}\n'],
  ['a tab-indented document', 'version: 1\nplugins:\n\tovs: {}\n'],
  ['a number as plugins', 'version: 1\nplugins: 7\n'],
  ['a string document', '"just a string"'],
  ['a YAML stream of two documents', 'version: 1\nplugins: {}\n---\nversion: 1\nplugins: {}\n'],
  [
    'a negative trunk',
    JSON.stringify({ version: 1, plugins: { ovs: { bridges: { br0: { ports: { p: { trunks: [-1] } } } } } } }),
  ],
  [
    'a float tag',
    JSON.stringify({ version: 1, plugins: { ovs: { bridges: { br0: { ports: { p: { tag: 1.5 } } } } } } }),
  ],
  [
    'an mtu too small',
    JSON.stringify({ version: 1, plugins: { ovs: { bridges: { br0: { ports: { p: { mtu_request: 10 } } } } } } }),
  ],
  [
    'a boolean datapath',
    JSON.stringify({ version: 1, plugins: { ovs: { bridges: { br0: { datapath_type: true } } } } }),
  ],
  ['prune of an unknown collection', JSON.stringify({ version: 1, plugins: { ovs: { prune: { ports: true } } } })],
  [
    'a 5000-character external id value',
    JSON.stringify({ version: 1, plugins: { ovs: { bridges: { br0: { external_ids: { a: 'x'.repeat(5000) } } } } } }),
  ],
);

describe('the bad-input corpus', () => {
  it('holds at least 100 documents', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(100);
  });

  it('rejects every hostile or invalid document with a located message and no stack trace', async () => {
    const accepted: string[] = [];
    for (const [name, text] of corpus) {
      try {
        await prepareLoaded(registry, parseText(typeof text === 'string' ? Buffer.from(text) : text, 'bad.yaml'));
        accepted.push(name);
      } catch (e) {
        expect(e, name).toBeInstanceOf(OpdError);
        const err = e as OpdError;
        expect(err.kind, `${name}: ${err.message}`).toBe('invalid-document');
        expect(err.format(), name).not.toMatch(/\n\s+at .*:\d+:\d+/);
        const located =
          err.problems.length === 0 || err.problems.every((p) => p.file === 'bad.yaml' && typeof p.line === 'number');
        expect(located || /bytes|larger|nested|UTF-8/.test(err.message), `${name}: ${err.format()}`).toBe(true);
      }
    }
    // names that are valid for their field are not hostile there (e.g. a patch peer "*" is not)
    expect(accepted).toEqual([]);
  });
});

describe('property: mutated valid documents', () => {
  const seeds = readdirSync(join(ROOT, 'examples'))
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .map((f) => parse(readFileSync(join(ROOT, 'examples', f), 'utf8')));

  const leafPaths = (v: unknown, path: (string | number)[] = [], out: (string | number)[][] = []) => {
    out.push(path);
    if (v && typeof v === 'object')
      for (const [k, c] of Object.entries(v)) leafPaths(c, [...path, Array.isArray(v) ? Number(k) : k], out);
    return out;
  };

  const setAt = (root: unknown, path: (string | number)[], value: unknown): unknown => {
    if (!path.length) return value;
    const copy = structuredClone(root) as Record<string | number, unknown>;
    let cur = copy;
    for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
    cur[path[path.length - 1]] = value;
    return copy;
  };

  it('either accepts a mutated document or rejects it as invalid with located problems, never anything else', async () => {
    const hostileValue = fc.oneof(
      fc.constantFrom(...HOSTILE),
      fc.jsonValue(),
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.dictionary(fc.constantFrom(...HOSTILE, 'state', 'prune', 'ports', 'tag'), fc.jsonValue(), { maxKeys: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat(seeds.length - 1), fc.nat(), hostileValue, async (si, pi, value) => {
        const seed = seeds[si];
        const paths = leafPaths(seed);
        const mutated = setAt(seed, paths[pi % paths.length], value);
        try {
          await prepareLoaded(registry, parseText(Buffer.from(JSON.stringify(mutated)), 'm.json'));
        } catch (e) {
          if (!(e instanceof OpdError)) throw e;
          if (e.kind !== 'invalid-document') throw e;
          for (const p of e.problems)
            if (typeof p.line !== 'number') throw new Error(`unlocated problem: ${JSON.stringify(p)}`);
        }
      }),
      { numRuns: 400, seed: 20261122 },
    );
  });
});

describe('bad input through the CLI', () => {
  let ovs: OvsSandbox;
  beforeAll(async () => {
    ovs = await startOvs();
    await ovs.vsctl(['--no-wait', 'add-br', 'keep0']);
  });
  afterAll(async () => {
    await ovs?.stop();
  });

  it('exits 65 for hostile documents, prints no stack trace and changes nothing on the host', async () => {
    const env = { OPD_OVS_DB: ovs.db, OPD_AUDIT_LOG: join(tmp(), 'audit.jsonl') };
    const before = await ovs.dump();
    const picks = corpus.filter((_, i) => i % 8 === 0).slice(0, 14);
    for (const [name, text] of picks) {
      const r = await opd(['apply', doc(typeof text === 'string' ? text : text.toString('latin1'))], { env });
      expect(r.code, `${name}: ${r.stderr}`).toBe(65);
      expect(r.stdout, name).toBe('');
      expect(r.stderr, name).toMatch(/^opd: /);
      expect(r.stderr, name).not.toMatch(/\s+at .*\.js:\d+/);
    }
    expect(await ovs.dump()).toBe(before);
  });
});

void expectInvalid;
