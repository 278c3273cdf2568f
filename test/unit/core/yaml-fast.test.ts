import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LineCounter, parseDocument, stringify } from 'yaml';
import { EXACT_PARSE_MAX_BYTES, MAX_NODES, parseText } from '../../../src/core/document.js';
import { EventLocator, fastYaml, jsonNodes, resolvePlain } from '../../../src/core/yaml-fast.js';
import { pathToPointer } from '../../../src/core/document.js';
import { OpdError, type Problem } from '../../../src/core/errors.js';

/**
 * What opd read before the fast path, kept here as the reference: the `yaml` package with its own
 * (quadratic) duplicate-key check. The new loader must give the same value, or the same problems
 * byte for byte.
 */
function reference(text: string, file = 'r.yaml'): unknown {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true });
  const problems: Problem[] = doc.errors.map((e) => {
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
  if (problems.length) throw new OpdError('invalid-document', `${file} is not valid YAML/JSON`, { problems });
  return doc.toJS({ maxAliasCount: 100 });
}

/** The new loader's value, or its error text. */
function load(text: string, file = 'r.yaml'): { raw?: unknown; error?: string } {
  try {
    return { raw: parseText(Buffer.from(text), file).raw };
  } catch (err) {
    return { error: (err as OpdError).format() };
  }
}

function same(written: string, file = 'r.yaml'): void {
  // A file holds bytes: compare what both loaders read from the same UTF-8 bytes. (The yaml package
  // can fold a double-quoted string between the two halves of a surrogate pair, writing a string no
  // file can hold; its UTF-8 bytes carry U+FFFD for each lone half, and that is what opd reads.)
  const text = Buffer.from(written, 'utf8').toString('utf8');
  let want: { raw?: unknown; error?: string };
  try {
    want = { raw: reference(text, file) };
  } catch (err) {
    if (!(err instanceof OpdError)) return; // the reference itself failed (alias limit, depth): not compared here
    want = { error: err.format() };
  }
  expect(load(text, file), text).toStrictEqual(want);
}

const SCALARS = [
  '',
  '~',
  'null',
  'Null',
  'NULL',
  'nULL',
  'true',
  'True',
  'TRUE',
  'tRUE',
  'false',
  'FALSE',
  'yes',
  'no',
  'on',
  'off',
  'y',
  'n',
  '0',
  '-0',
  '+0',
  '007',
  '12',
  '+12',
  '-12',
  '0o17',
  '0o18',
  '0O17',
  '0x1F',
  '0x1g',
  '0X1F',
  '0b101',
  '1_000',
  '1.5',
  '1.',
  '.5',
  '-.5',
  '+1.5e3',
  '1e3',
  '1E-3',
  '.5e2',
  '1.e2',
  '1e',
  '.inf',
  '-.Inf',
  '+.INF',
  '.nan',
  '.NaN',
  '.NAN',
  '-.nan',
  '.Nan',
  '1:20',
  '2001-12-14',
  '9'.repeat(400),
  '1e400',
  '0.1.2',
  '- a',
  'a b',
  '#x',
];

describe('the fast path of document loading', () => {
  it('resolves every plain scalar as the yaml package’s core schema does', () => {
    for (const s of SCALARS) {
      const text = s === '' ? 'v:\n' : `v: ${/^[-#]|^- /.test(s) ? `'${s}'` : s}\n`;
      const want = (reference(text) as { v: unknown }).v;
      if (!/^[-#]/.test(s)) expect(resolvePlain(s), s).toStrictEqual(want);
      same(text);
      same(`${s === '' ? "''" : s}: 1\n`);
    }
  });

  it('reads any document the yaml package writes, in any style, exactly as the yaml package reads it', () => {
    const key = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...SCALARS));
    const scalar = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(...SCALARS, 'a\nb', ' lead', 'trail ', 'x: y', 'a # b', '"q"', "'s'", '\t', 'é€😀', '\\n', ''),
      fc.integer(),
      fc.double({ noNaN: true }),
      fc.boolean(),
      fc.constant(null),
    );
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, scalar, tie('arr'), tie('obj')),
      arr: fc.array(tie('v'), { maxLength: 4 }),
      obj: fc.dictionary(key, tie('v'), { maxKeys: 4 }),
    })).v;
    const options = fc.record({
      defaultStringType: fc.constantFrom('PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE', 'BLOCK_LITERAL', 'BLOCK_FOLDED'),
      defaultKeyType: fc.constantFrom(null, 'PLAIN', 'QUOTE_DOUBLE'),
      collectionStyle: fc.constantFrom('any', 'block', 'flow'),
      lineWidth: fc.constantFrom(0, 8, 20, 80),
      indent: fc.constantFrom(2, 4),
      indentSeq: fc.boolean(),
    });
    fc.assert(
      fc.property(value, options, (v, o) => {
        same(stringify({ version: 1, v }, o as never));
      }),
      { numRuns: 400 },
    );
  });

  it('gives the same value or the same problems, byte for byte, for a document cut, doubled or altered anywhere', () => {
    const base = [
      'version: 1\nplugins:\n  ovs:\n    bridges:\n      br0: { ports: { p1: { tag: 10 } } }\n      br1:\n        ports:\n          p2: {}\n',
      'version: 1\nplugins:\n  files:\n    paths:\n      /etc/a.conf:\n        content: |\n          x = 1\n          y: 2\n        mode: "0640"\n',
      '{"version": 1, "plugins": {"sysctl": {"keys": {"net.ipv4.ip_forward": {"value": "1"}}}}}\n',
    ];
    const edit = fc.record({
      base: fc.constantFrom(...base),
      at: fc.nat(),
      len: fc.nat({ max: 12 }),
      kind: fc.constantFrom('cut', 'double', 'insert'),
      insert: fc.constantFrom(
        '- ',
        ': ',
        '\n',
        '  ',
        '{',
        '}',
        '[',
        ',',
        '"',
        "'",
        '#',
        '&a ',
        '*a',
        '!!str ',
        '? ',
        '\t',
        'br0: {}\n',
      ),
    });
    fc.assert(
      fc.property(edit, (e) => {
        const at = e.at % (e.base.length + 1);
        const text =
          e.kind === 'cut'
            ? e.base.slice(0, at) + e.base.slice(at + e.len)
            : e.kind === 'double'
              ? e.base.slice(0, at + e.len) + e.base.slice(at)
              : e.base.slice(0, at) + e.insert + e.base.slice(at);
        same(text);
      }),
      { numRuns: 1500 },
    );
  });

  it('reports duplicate keys where and in the order the yaml package did', () => {
    for (const text of [
      'a: 1\na: 2\n',
      'x:\n  a: 1\n  a: 2\n',
      '{a: 1, a: 2}',
      '{ a: 1 ,a: 2}',
      'a: 1\n# c\na: 2',
      'a: 1\n\n\n  \na: 2\n',
      '? a\n: 1\n? a\n: 2\n',
      'a: 1\n!!str a: 2\n',
      '&x a: 1\n&y a: 2\n',
      '- a: 1\n  a: 2\n',
      'a: 1\n"a": 2\n',
      '{a: 1,\n  a: 2}',
      'a: {b: 1, b: 2}\nc: [x\n',
      'a:\n  - 1\na: 2',
      'a: |\n  x\na: 2\n',
      '[{a: 1, a: 2}]',
      'a: 1\r\na: 2\r\n',
      'a: 1 # c\na: 2',
      'a:\na: 2\n',
      '1: x\n"1": y\n1: z\n',
      '.nan: 1\n.nan: 2\n',
      '~: 1\nnull: 2\n',
      'a: 1\na: 2\na: 3\nb: [\n',
    ])
      same(text);
    same('{"a": 1, "b": {"c": 2, "c": 3}}', 'r.json');
  });

  it('finds a duplicate among 40,000 keys of one map, on its line', () => {
    const lines = Array.from({ length: 40000 }, (_, i) => `  k${i}: ${i}`);
    lines.splice(30000, 0, '  k17: dup');
    const { error } = load(`version: 1\nkeys:\n${lines.join('\n')}\n`);
    expect(error).toMatch(/duplicate key/);
    expect(error).toMatch(/r\.yaml:30003:3/);
  });

  it('takes JSON as JSON.parse reads it, and still refuses a key given twice', () => {
    const text =
      '{"version": 1, "plugins": {"ovs": {"bridges": {"b\\"r": {"ports": {"p": {"tag": 1}}}}}}, "n": [1.5, -0, 1e21, 1.0]}';
    expect(load(text, 'x.json').raw).toStrictEqual(JSON.parse(text));
    expect(load(text, 'x.json').raw).toStrictEqual(reference(text));
    const tricky = '{"a\\"": 1, "b": "x\\\\", "c": {"a": "\\"a\\":"}}';
    expect(jsonNodes(tricky, JSON.parse(tricky))).toStrictEqual({ nodes: 9, depth: 2, duplicates: false });
    expect(load('{"a": 1, "a": 2}', 'x.json').error).toMatch(
      /x\.json:1:10: \(document root\): duplicate key: Map keys must be unique/,
    );
  });

  it('leaves what it does not reproduce to the exact parse: anchors, aliases, tags, directives, complex keys, several documents', () => {
    for (const text of [
      'a: &x 1\nb: *x\n',
      'a: !!str 12\n',
      '%YAML 1.1\n---\na: yes\n',
      '? [a, b]\n: 1\n',
      '[a]: 1\n',
      'a: 1\n---\nb: 2\n',
      '',
      '# only a comment\n',
      'a: ! 12\n',
    ]) {
      expect(fastYaml(text, MAX_NODES, 66).ok, text).toBe(false);
      same(text);
    }
  });

  it('locates keys and values from the fast parser’s events exactly where the exact parse does', () => {
    const paths = (v: unknown, at: string[] = []): string[][] =>
      v !== null && typeof v === 'object' ? [at, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]))] : [at];
    const value = fc.dictionary(
      fc.string({ minLength: 1, maxLength: 6 }),
      fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.integer(),
        fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.oneof(fc.string(), fc.integer()), { maxKeys: 3 }),
        fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxLength: 3 }),
      ),
      { maxKeys: 5 },
    );
    const style = fc.constantFrom('PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE', 'BLOCK_LITERAL', 'BLOCK_FOLDED');
    fc.assert(
      fc.property(value, style, fc.constantFrom('block', 'flow', 'any'), (v, s, c) => {
        const text = stringify({ version: 1, v }, { defaultStringType: s, collectionStyle: c } as never);
        if (/\r|\t/.test(text)) return;
        const loaded = parseText(Buffer.from(text), 'l.yaml');
        const events = new EventLocator(text);
        for (const p of paths(loaded.raw))
          for (const atKey of [false, true])
            expect(events.locate(p, atKey), `${pathToPointer(p)} ${atKey}\n${text}`).toEqual(
              loaded.locate(pathToPointer(p), atKey),
            );
      }),
      { numRuns: 300 },
    );
  });

  it(`refuses a document of more than ${MAX_NODES} nodes with exit 65, naming the limit`, () => {
    for (const [text, file] of [
      [`version: 1\nv: [${'0,'.repeat(MAX_NODES)}0]\n`, 'big.yaml'],
      [`{"version": 1, "v": [${'0,'.repeat(MAX_NODES)}0]}`, 'big.json'],
    ]) {
      let err: OpdError | undefined;
      try {
        parseText(Buffer.from(text), file);
      } catch (e) {
        err = e as OpdError;
      }
      expect(err?.exitCode).toBe(65);
      expect(err?.format()).toMatch(new RegExp(`more than the ${MAX_NODES} allowed`));
      expect(err?.format()).toMatch(/hint: split the state/);
    }
  });

  it(`reports the fast parser's own located message for a document over ${EXACT_PARSE_MAX_BYTES} bytes`, () => {
    const filler = `version: 1\nfiles:\n${'  x: "' + 'y'.repeat(100) + '"\n'}`.repeat(1);
    const lines = Array.from(
      { length: Math.ceil(EXACT_PARSE_MAX_BYTES / 100) },
      (_, i) => `  k${i}: "${'y'.repeat(90)}"`,
    );
    const big = `${filler}keys:\n${lines.join('\n')}\n`;
    expect(load(big).raw).toBeDefined();
    const bad = load(`${big}  k5: [unclosed\n`);
    expect(bad.error).toMatch(new RegExp(`r\\.yaml:${lines.length + 6}:\\d+: \\(document root\\): YAML syntax error`));
    expect(load(`${big}  k5: dup\n`).error).toMatch(/duplicate key: "k5"/);
    expect(load(`${big}anchor: &a 1\n`).error).toMatch(/an anchor in a document over 4 MiB/);
  });
});
