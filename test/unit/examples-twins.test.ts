/**
 * One op-dbus example: examples/opdbus-full-mode.json (op-dbus's JSON forms, and opd's sections
 * where op-dbus has none) resolves to exactly the document of examples/opdbus-full-mode.yaml.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { prepareFile } from '../../src/core/engine.js';
import { canonical } from '../../src/core/canonical.js';
import { readHostFacts } from '../../src/core/facts.js';
import { registry } from '../../src/plugins/index.js';
import { ROOT } from '../helpers/opd.js';

const vars = { vars: ['address=192.168.1.10', 'gateway=192.168.1.1', 'uplink=enp1s0'], env: {} };

describe('the op-dbus example and its JSON twin', () => {
  it('resolve to the same document: the same plugin sections, resources and parameters', async () => {
    const facts = readHostFacts();
    const [y, j] = await Promise.all(
      ['opdbus-full-mode.yaml', 'opdbus-full-mode.json'].map((f) =>
        prepareFile(registry, join(ROOT, 'examples', f), {}, vars, facts),
      ),
    );
    expect(canonical(j.doc.plugins)).toBe(canonical(y.doc.plugins));
    expect(canonical((j.doc as unknown as { params: object }).params)).toBe(
      canonical((y.doc as unknown as { params: object }).params),
    );
    expect(j.excluded.map((e) => `${e.address}: ${e.reason}`)).toEqual(
      y.excluded.map((e) => `${e.address}: ${e.reason}`),
    );
    // seventeen resources each (lxcfs counted where its when: does not hold)
    const count = (p: typeof y) =>
      [...p.plugins].reduce(
        (n, [name, pl]) =>
          n + pl.collections.reduce((k, c) => k + Object.keys((p.doc.plugins[name]?.[c] as object) ?? {}).length, 0),
        0,
      ) + p.excluded.length;
    expect(count(y)).toBe(17);
    expect(count(j)).toBe(17);
  });
});
