import { describe, expect, it } from 'vitest';
import { parseText } from '../../../src/core/document.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { registry } from '../../../src/plugins/index.js';
import { OpdError } from '../../../src/core/errors.js';

async function problems(text: string | Buffer): Promise<OpdError> {
  try {
    await prepareLoaded(registry, parseText(typeof text === 'string' ? Buffer.from(text) : text, 'bad.yaml'));
  } catch (err) {
    return err as OpdError;
  }
  throw new Error('document was accepted');
}

const head = 'version: 1\nplugins:\n  ovs:\n    bridges:\n';

interface Case {
  name: string;
  text: string | Buffer;
  message: RegExp;
  line?: number;
  col?: number;
  pointer?: string;
}

const cases: Case[] = [
  { name: 'a YAML syntax error', text: 'version: 1\nplugins: { ovs: [\n', message: /YAML syntax error/, line: 3 },
  { name: 'a duplicate key', text: 'version: 1\nversion: 1\nplugins: {}\n', message: /duplicate key/, line: 2 },
  { name: 'a missing version', text: 'plugins: {}\n', message: /missing required key "version"/, pointer: '' },
  {
    name: 'a wrong version',
    text: 'version: 2\nplugins: {}\n',
    message: /expected 1, got 2/,
    line: 1,
    col: 10,
    pointer: '/version',
  },
  {
    name: 'an unknown top-level key',
    text: 'version: 1\nplugins: {}\nextra: 1\n',
    message: /unknown key "extra"/,
    line: 3,
    col: 1,
  },
  {
    name: 'an unknown plugin',
    text: 'version: 1\nplugins:\n  ovz: {}\n',
    message: /unknown key "ovz".*did you mean "ovs"/,
    line: 3,
    col: 3,
  },
  {
    name: 'a misspelt bridge field',
    text: head + '      br0:\n        datapth_type: netdev\n',
    message: /unknown key "datapth_type".*did you mean "datapath_type"/,
    line: 6,
    col: 9,
  },
  {
    name: 'a bridge name with shell metacharacters',
    text: head + '      "br0;rm -rf /":\n        ports: {}\n',
    message: /invalid name "br0;rm -rf \/"/,
    line: 5,
    col: 7,
  },
  { name: 'a bridge named ..', text: head + '      "..":\n        ports: {}\n', message: /\.\./, line: 5 },
  {
    name: 'a bridge name longer than 15 characters',
    text: head + '      abcdefghijklmnop: {}\n',
    message: /invalid name "abcdefghijklmnop"/,
    line: 5,
  },
  {
    name: 'a VLAN tag out of range',
    text: head + '      br0:\n        ports:\n          p1: { tag: 5000 }\n',
    message: /must be <= 4095/,
    line: 7,
    pointer: '/plugins/ovs/bridges/br0/ports/p1/tag',
  },
  {
    name: 'a VLAN tag that is a string',
    text: head + '      br0:\n        ports:\n          p1: { tag: ten }\n',
    message: /expected integer, got string "ten"/,
    line: 7,
  },
  {
    name: 'trunks that are not a list',
    text: head + '      br0:\n        ports:\n          p1: { trunks: 10 }\n',
    message: /expected array/,
    line: 7,
  },
  {
    name: 'a bond with one interface',
    text: head + '      br0:\n        ports:\n          b0: { interfaces: { a: {} } }\n',
    message: /fewer than 2/,
    line: 7,
  },
  {
    name: 'a bad vlan_mode',
    text: head + '      br0:\n        ports:\n          p1: { vlan_mode: tagged }\n',
    message: /expected one of "access"/,
    line: 7,
  },
  {
    name: 'a malformed depends_on address',
    text: head + '      br0:\n        depends_on: ["not an address"]\n',
    message: /invalid value "not an address"/,
    line: 6,
  },
  {
    name: 'plugins given as a list',
    text: 'version: 1\nplugins: [ovs]\n',
    message: /expected object, got array/,
    line: 2,
  },
  { name: 'an empty document', text: '', message: /expected object, got null/ },
  {
    name: 'a state that is neither present nor absent',
    text: head + '      br0: { state: gone }\n',
    message: /expected one of "present", "absent"/,
    line: 5,
  },
  {
    name: 'a port name with a newline',
    text: head + '      br0:\n        ports:\n          "p\\n1": {}\n',
    message: /invalid name/,
    line: 7,
  },
  {
    name: 'an external_ids key with spaces',
    text: head + '      br0:\n        external_ids: { "a b": x }\n',
    message: /invalid name "a b"/,
    line: 6,
  },
];

describe('loading and validating a state document', () => {
  for (const c of cases) {
    it(`rejects ${c.name} with a located message`, async () => {
      const e = await problems(c.text);
      expect(e).toBeInstanceOf(OpdError);
      expect(e.kind).toBe('invalid-document');
      expect(e.exitCode).toBe(65);
      const text = e.format();
      expect(text).toMatch(c.message);
      expect(text).not.toMatch(/\n\s+at /); // no stack trace
      const p = e.problems.find((x) => c.message.test(`${x.message} (fix: ${x.fix})`)) ?? e.problems[0];
      expect(p, text).toBeDefined();
      expect(p.file).toBe('bad.yaml');
      if (c.line !== undefined) expect(p.line, text).toBe(c.line);
      if (c.col !== undefined) expect(p.col, text).toBe(c.col);
      if (c.pointer !== undefined) expect(p.pointer, text).toBe(c.pointer);
    });
  }

  it('rejects bytes that are not UTF-8, naming the line', async () => {
    const e = await problems(Buffer.concat([Buffer.from('version: 1\nplugins: {}\n# caf'), Buffer.from([0xe9, 0x0a])]));
    expect(e.format()).toMatch(/not valid UTF-8/);
    expect(e.problems[0].line).toBe(3);
  });

  it('rejects nesting deeper than 64 levels', async () => {
    const deep = 'version: 1\nplugins: {}\ndescription: ' + '['.repeat(200) + ']'.repeat(200) + '\n';
    const e = await problems(deep);
    expect(e.format()).toMatch(/nested/);
  });

  it('rejects an alias bomb', async () => {
    const bomb = [
      'version: 1',
      'plugins: {}',
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      '',
    ].join('\n');
    const e = await problems(bomb);
    expect(e.kind).toBe('invalid-document');
  });

  it('reports every problem of a document at once', async () => {
    const e = await problems(
      head + '      "bad;name": {}\n      br1: { fail_mode: maybe, ports: { p1: { tag: -1 } } }\nextra: true\n',
    );
    expect(e.problems.length).toBeGreaterThanOrEqual(4);
    expect(e.message).toMatch(/\d+ problems/);
    // sorted by position
    const lines = e.problems.map((p) => p.line ?? 0);
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
  });

  it('reports a dependency cycle naming every resource in it', async () => {
    const e = await problems(
      head +
        '      a: { depends_on: [ovs/bridges/b] }\n      b: { depends_on: [ovs/bridges/c] }\n      c: { depends_on: [ovs/bridges/a] }\n',
    );
    expect(e.exitCode).toBe(65);
    // one problem per edge of the cycle, each at its depends_on entry
    expect(e.problems.map((p) => [p.line, p.pointer])).toEqual([
      [5, '/plugins/ovs/bridges/a/depends_on/0'],
      [6, '/plugins/ovs/bridges/b/depends_on/0'],
      [7, '/plugins/ovs/bridges/c/depends_on/0'],
    ]);
    for (const p of e.problems)
      expect(p.message).toContain('dependency cycle ovs/bridges/a → ovs/bridges/b → ovs/bridges/c → ovs/bridges/a');
  });

  it('accepts a valid document and strips a byte order mark', async () => {
    const p = await prepareLoaded(
      registry,
      parseText(Buffer.from('\ufeff' + head + '      br0: { ports: { p1: { tag: 10 } } }\n'), 'ok.yaml'),
    );
    expect(Object.keys(p.doc.plugins.ovs.bridges as object)).toEqual(['br0']);
  });

  it('accepts JSON as well as YAML', async () => {
    const p = await prepareLoaded(
      registry,
      parseText(Buffer.from(JSON.stringify({ version: 1, plugins: { ovs: { bridges: { br0: {} } } } })), 'ok.json'),
    );
    expect(p.plugins.has('ovs')).toBe(true);
  });
});
