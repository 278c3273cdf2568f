/**
 * The host's vars file (/etc/opd/vars.yaml; OPD_VARS_FILE): the parameters of every document the
 * host applies — the CLI's, the daemon's and opd-boot's — after --var, --vars and OPD_VAR_*.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { parseText } from '../../../src/core/document.js';
import { resolveParams } from '../../../src/core/params.js';
import { OpdError } from '../../../src/core/errors.js';
import { tmp } from '../../helpers/opd.js';

const DOC =
  'version: 1\nparams:\n  address: { type: string }\n  prefix: { type: integer, default: 24 }\nplugins:\n  net: { interfaces: { br0: { addresses: ["${param.address}/${param.prefix}"] } } }\n';
const resolve = (src: Parameters<typeof resolveParams>[1]) =>
  (resolveParams(parseText(Buffer.from(DOC), 'doc.yaml'), src).raw as { plugins: { net: object } }).plugins.net;
const file = (text: string) => {
  const f = join(tmp('opd-vars-'), 'vars.yaml');
  writeFileSync(f, text);
  return f;
};

describe("the host's vars file", () => {
  it('gives the values no flag or environment variable gives; names the document does not declare are ignored', () => {
    const f = file('address: 10.1.2.3\nprefix: 16\nuplink: enp1s0 # for another document\n');
    expect(resolve({ env: {}, defaultVarsFile: f })).toEqual({ interfaces: { br0: { addresses: ['10.1.2.3/16'] } } });
  });

  it('comes after --var, --vars and OPD_VAR_*', () => {
    const f = file('address: 10.1.2.3\n');
    const other = file('address: 10.9.9.9\n');
    const addr = (src: Parameters<typeof resolveParams>[1]) =>
      (resolve(src) as { interfaces: { br0: { addresses: string[] } } }).interfaces.br0.addresses[0];
    expect(addr({ env: { OPD_VAR_address: '10.0.0.7' }, defaultVarsFile: f })).toBe('10.0.0.7/24');
    expect(addr({ env: {}, varsFiles: [other], defaultVarsFile: f })).toBe('10.9.9.9/24');
    expect(addr({ env: {}, vars: ['address=10.5.5.5'], defaultVarsFile: f })).toBe('10.5.5.5/24');
  });

  it('is optional: a missing one is no error, and the unset parameter names it as a place to give the value', () => {
    try {
      resolve({ env: {}, defaultVarsFile: '/nonexistent/opd/vars.yaml' });
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(OpdError);
      expect((err as OpdError).exitCode).toBe(65);
      expect((err as OpdError).problems?.[0].fix).toContain('address: in /nonexistent/opd/vars.yaml');
    }
  });

  it('reports a value of the wrong type naming the file, and a file that is not a map as a usage error', () => {
    try {
      resolve({ env: {}, defaultVarsFile: file('address: 10.1.2.3\nprefix: wide\n') });
      throw new Error('accepted');
    } catch (err) {
      expect((err as OpdError).problems?.[0].message).toMatch(
        /parameter "prefix" \(from .*vars\.yaml\): expected an integer/,
      );
    }
    expect(() => resolve({ env: {}, defaultVarsFile: file('- a\n- b\n') })).toThrow(/the vars file .*: expected a map/);
  });
});
