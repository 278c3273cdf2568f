import { describe, expect, it } from 'vitest';
import { parseText } from '../../../../src/core/document.js';
import { prepareLoaded } from '../../../../src/core/engine.js';
import { registry } from '../../../../src/plugins/index.js';
import { OpdError } from '../../../../src/core/errors.js';

async function problems(yaml: string): Promise<string[]> {
  try {
    await prepareLoaded(registry, parseText(yaml, 'state.yaml'));
    return [];
  } catch (err) {
    if (!(err instanceof OpdError)) throw err;
    return err.problems.map((p) => `${p.pointer}: ${p.message}`);
  }
}

const section = (installed: string) => `version: 1\nplugins:\n  packages:\n    installed:\n      ${installed}\n`;

describe('the packages schema', () => {
  it('accepts Debian package names, exact versions and allow_destroy', async () => {
    expect(
      await problems(
        section(
          `g++-12: { version: "1:12.2.0-14+deb12u1" }\n      libvirt-daemon-system: { state: absent, allow_destroy: true }`,
        ),
      ),
    ).toEqual([]);
  });

  it('rejects names with shell metacharacters, upper case, globs or an architecture', async () => {
    for (const bad of ['"a;rm -rf /"', '"$(id)"', 'Bash', '"opd-*"', '"libc6:i386"', '"-oops"', '"../etc"']) {
      const p = await problems(section(`${bad}: {}`));
      expect(p.length, bad).toBeGreaterThan(0);
    }
  });

  it('rejects versions that could smuggle options or separators', async () => {
    for (const bad of ['"1.0 --force"', '"1.0;all"', '"-1"', '"1.0/../x"', '""']) {
      const p = await problems(section(`bash: { version: ${bad} }`));
      expect(p.length, bad).toBeGreaterThan(0);
    }
  });

  it('rejects unknown keys and backends', async () => {
    expect((await problems(section('bash: { versoin: "1" }'))).length).toBeGreaterThan(0);
    expect((await problems('version: 1\nplugins:\n  packages:\n    backend: yum\n')).length).toBeGreaterThan(0);
  });
});
