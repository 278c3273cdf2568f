/**
 * What `opd validate` catches without a host: dependency mistakes (on the edges the plan orders
 * by) and names a JavaScript object cannot hold, in every collection of every plugin.
 */
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseText } from '../../../src/core/document.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { collectEdges } from '../../../src/core/plan.js';
import { declaredAddresses, nearMisses, resourceEdges } from '../../../src/core/deps.js';
import { registry } from '../../../src/plugins/index.js';
import { OpdError } from '../../../src/core/errors.js';

async function refusal(text: string, file = 'bad.yaml'): Promise<OpdError> {
  try {
    await prepareLoaded(registry, parseText(Buffer.from(text), file));
  } catch (err) {
    if (err instanceof OpdError) return err;
    throw err;
  }
  throw new Error('the document was accepted');
}

describe('depends_on', () => {
  it('naming an address the document does not declare is refused at its file:line, with the near miss', async () => {
    const e = await refusal(
      [
        'version: 1',
        'plugins:',
        '  ovs:',
        '    bridges:',
        '      br0: {}',
        '      br1: { depends_on: [ovs/bridgesbr0] }',
        '  files:',
        '    paths:',
        '      /etc/a.conf: { content: "x", depends_on: [files/paths//etc/b.cnf] }',
        '      /etc/b.conf: { content: "y", depends_on: [ovs/bridges/br9-far-away-name] }',
      ].join('\n'),
    );
    expect(e.exitCode).toBe(65);
    expect(e.problems.map((p) => [p.line, p.col, p.fix])).toEqual([
      [6, 27, 'did you mean "ovs/bridges/br0"?'],
      [9, 49, 'did you mean "files/paths//etc/b.conf"?'],
      [10, 49, expect.stringMatching(/^name a resource of this document/)],
    ]);
    expect(e.problems[0].message).toBe(
      'ovs/bridges/br1 depends_on "ovs/bridgesbr0", an address the document does not declare',
    );
  });

  it('may name a file as opd prints it (files/paths/etc/b.conf) as well as exactly', async () => {
    const p = await prepareLoaded(
      registry,
      parseText(
        Buffer.from(
          'version: 1\nplugins:\n  files:\n    paths:\n      /etc/a.conf: { content: "x", depends_on: [files/paths/etc/b.conf] }\n      /etc/b.conf: { content: "y" }\n',
        ),
        'shown.yaml',
      ),
    );
    expect(p.doc.plugins.files).toBeDefined();
  });

  it('may name a part of a declared resource', async () => {
    const p = await prepareLoaded(
      registry,
      parseText(
        Buffer.from(
          'version: 1\nplugins:\n  ovs:\n    bridges:\n      br0: { ports: { p1: {} } }\n      br1: { depends_on: [ovs/bridges/br0/ports/p1] }\n',
        ),
        'ok.yaml',
      ),
    );
    expect(p.plugins.has('ovs')).toBe(true);
  });

  it('suggests only what is near', () => {
    const declared = new Set(['ovs/bridges/br0', 'ovs/bridges/mesh', 'files/paths//etc/x.conf']);
    expect(nearMisses('ovs/bridges/br1', declared)).toEqual(['ovs/bridges/br0']);
    expect(nearMisses('files/paths/etc/x.conf', declared)).toEqual(['files/paths//etc/x.conf']);
    expect(nearMisses('lxc/containers/web', declared)).toEqual([]);
  });
});

describe('dependency cycles', () => {
  it('through an implicit edge are refused, naming the implicit edge and the depends_on entry', async () => {
    // alice's primary group is staff (the users plan orders alice after it); staff depends_on alice
    const e = await refusal(
      [
        'version: 1',
        'plugins:',
        '  users:',
        '    users:',
        '      alice: { group: staff }',
        '  groups:',
        '    groups:',
        '      staff: { depends_on: [users/users/alice] }',
      ].join('\n'),
    );
    expect(e.exitCode).toBe(65);
    expect(e.problems.map((p) => [p.line, p.message])).toEqual([
      [5, expect.stringContaining('users/users/alice comes after groups/groups/staff (implicit: order)')],
      [8, expect.stringContaining('groups/groups/staff depends_on users/users/alice here')],
    ]);
  });
});

describe('the edges validate, graph and plan share', () => {
  it('include the order a plan gives (a user after its primary group) and draw parts the plan orders alone', async () => {
    const prep = await prepareLoaded(
      registry,
      parseText(
        Buffer.from(
          [
            'version: 1',
            'plugins:',
            '  users:',
            '    users:',
            '      alice: { group: staff, groups: [kvm] }',
            '  groups:',
            '    groups:',
            '      staff: {}',
            '      kvm: { members: [alice] }',
          ].join('\n'),
        ),
        'ok.yaml',
      ),
    );
    const edges = resourceEdges(
      collectEdges(prep.plugins, prep.doc.plugins),
      declaredAddresses(prep.plugins, prep.doc),
    );
    expect(edges).toEqual([
      { from: 'groups/groups/kvm/members', to: 'users/users/alice', kind: 'order' },
      { from: 'users/users/alice', to: 'groups/groups/kvm', kind: 'order' },
      { from: 'users/users/alice', to: 'groups/groups/staff', kind: 'order' },
    ]);
  });
});

/** A document with one resource named `name` in collection `c` of plugin `p`. */
function docWith(p: string, c: string, name: string): string {
  return stringify({ version: 1, plugins: { [p]: { [c]: { [name]: {} } } } });
}

describe('names a JavaScript object cannot hold', () => {
  it('are refused in every collection of every plugin, at the line of the name', async () => {
    const plugins = await registry.loadAll();
    let cases = 0;
    for (const [p, plugin] of plugins)
      for (const c of plugin.collections)
        for (const name of ['__proto__', 'constructor', 'prototype']) {
          // JSON.parse keeps "__proto__" as an own key, as the YAML parser does
          const text = JSON.stringify(
            { version: 1, plugins: { [p]: { [c]: JSON.parse(`{"${name}": {}}`) } } },
            null,
            1,
          );
          const e = await refusal(text, 'bad.json');
          const hit = e.problems.find((x) => x.pointer === `/plugins/${p}/${c}/${name}`);
          expect(hit, `${p}/${c}/${name}: ${e.format()}`).toBeDefined();
          expect(hit!.line).toBe(6);
          expect(e.exitCode).toBe(65);
          cases++;
        }
    const collections = [...plugins.values()].reduce((n, x) => n + x.collections.length, 0);
    expect(cases).toBe(collections * 3);
    expect(plugins.size).toBe(registry.names.length);
  });

  it('are refused in YAML too, and as keys of any map', async () => {
    const e = await refusal(docWith('ovs', 'bridges', '__proto__'));
    expect(e.problems[0]).toMatchObject({ pointer: '/plugins/ovs/bridges/__proto__', line: 5 });
    const f = await refusal(
      'version: 1\nplugins:\n  ovs:\n    bridges:\n      br0: { external_ids: { constructor: x } }\n',
    );
    expect(f.problems[0].pointer).toBe('/plugins/ovs/bridges/br0/external_ids/constructor');
  });

  it('are refused where a list of named objects (op-dbus) would make them keys', async () => {
    const e = await refusal(
      JSON.stringify({ version: 1, plugins: { net: { interfaces: [{ name: '__proto__', type: 'bridge' }] } } }),
      'opdbus.json',
    );
    expect(e.problems.map((p) => p.pointer)).toEqual(['/plugins/net/interfaces/0/name']);
    const f = await refusal(
      JSON.stringify({
        version: 1,
        plugins: {
          net: {
            interfaces: [
              { name: 'p1', type: 'ovs-port', properties: { parent_bridge: '__proto__', port_type: 'internal' } },
            ],
          },
        },
      }),
      'opdbus.json',
    );
    expect(f.problems.map((p) => p.pointer)).toEqual(['/plugins/net/interfaces/0/properties/parent_bridge']);
    // nothing leaked into every object of the process
    expect(Object.keys(Object.prototype)).toEqual([]);
    const g = await refusal(
      JSON.stringify({ version: 1, plugins: { net: { interfaces: [{ name: 'constructor', type: 'bridge' }] } } }),
      'opdbus.json',
    );
    expect(g.problems.map((p) => p.pointer)).toEqual(['/plugins/net/interfaces/constructor']);
  });
});
