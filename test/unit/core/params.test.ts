import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseText } from '../../../src/core/document.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { registry } from '../../../src/plugins/index.js';
import { OpdError } from '../../../src/core/errors.js';
import type { VarSources } from '../../../src/core/params.js';
import { clearSecretValues, scrub } from '../../../src/core/secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'opd-params-'));
const prep = (text: string, vars: VarSources = {}) =>
  prepareLoaded(registry, parseText(Buffer.from(text), 'p.yaml'), {}, { env: {}, ...vars });
async function fails(text: string, vars: VarSources = {}): Promise<OpdError> {
  try {
    await prep(text, vars);
  } catch (err) {
    return err as OpdError;
  }
  throw new Error('document was accepted');
}

const DOC = `version: 1
params:
  admin_address: { type: string, description: the admin workstation }
  first_port: { type: integer, default: 5900 }
  operator: { type: string, default: alice }
plugins:
  groups:
    groups:
      libvirt: { members: ["\${param.operator}"] }
  firewall:
    tables:
      t:
        chains:
          input:
            type: filter
            hook: input
            priority: filter
            policy: accept
            rules:
              - "ip saddr \${param.admin_address} tcp dport \${param.first_port}-7000 accept"
  sysctl:
    keys:
      net.ipv4.ip_local_port_range_test: { value: "\${param.first_port}" }
`;

describe('document parameters', () => {
  afterEach(() => clearSecretValues());

  it('fails with exit 65 naming an unset required parameter and the line that declares it', async () => {
    const e = await fails(DOC);
    expect(e.exitCode).toBe(65);
    expect(e.problems).toHaveLength(1);
    expect(e.problems![0]).toMatchObject({ file: 'p.yaml', line: 3, pointer: '/params/admin_address' });
    expect(e.problems![0].message).toContain('required parameter "admin_address" is not set');
    expect(e.format()).toContain('p.yaml:3:');
  });

  it('substitutes values from --var, keeping the declared type for a whole-value reference', async () => {
    const p = await prep(DOC, { vars: ['admin_address=10.9.8.7', 'first_port=6000'] });
    const fw = p.doc.plugins.firewall as { tables: { t: { chains: { input: { rules: string[] } } } } };
    expect(fw.tables.t.chains.input.rules[0]).toBe('ip saddr 10.9.8.7 tcp dport 6000-7000 accept');
    expect((p.doc.plugins.groups as { groups: { libvirt: { members: string[] } } }).groups.libvirt.members).toEqual([
      'alice',
    ]);
  });

  it('takes values from the environment and from a vars file, --var winning over both', async () => {
    const f = join(dir, 'vars.yaml');
    writeFileSync(f, 'admin_address: 10.1.1.1\noperator: bob\n');
    const p = await prep(DOC, {
      varsFiles: [f],
      env: { OPD_VAR_operator: 'carol', OPD_VAR_admin_address: '10.2.2.2' },
      vars: ['operator=dave'],
    });
    expect(JSON.stringify(p.doc.plugins)).toContain('10.1.1.1');
    expect((p.doc.plugins.groups as { groups: { libvirt: { members: string[] } } }).groups.libvirt.members).toEqual([
      'dave',
    ]);
    const q = await prep(DOC, { env: { OPD_VAR_admin_address: '10.2.2.2' } });
    expect(JSON.stringify(q.doc.plugins)).toContain('10.2.2.2');
  });

  it('rejects a value of the wrong type, naming where it came from', async () => {
    const e = await fails(DOC, { vars: ['admin_address=x', 'first_port=many'] });
    expect(e.exitCode).toBe(65);
    expect(e.problems![0].message).toMatch(/parameter "first_port" \(from --var first_port\): expected an integer/);
  });

  it('reports an unknown parameter at the line that uses it', async () => {
    const e = await fails('version: 1\nplugins:\n  groups:\n    groups:\n      g: { members: ["${param.nobody}"] }\n');
    expect(e.problems![0]).toMatchObject({ line: 5 });
    expect(e.problems![0].message).toContain('unknown parameter "nobody"');
  });

  it('substitutes keys, so a resource can be named by a parameter', async () => {
    const p = await prep(
      'version: 1\nparams:\n  operator: { type: string }\nplugins:\n  users:\n    users:\n      "${param.operator}": { groups: [kvm] }\n',
      { vars: ['operator=erin'] },
    );
    expect(Object.keys((p.doc.plugins.users as { users: object }).users)).toEqual(['erin']);
  });

  it('leaves other ${…} text alone and writes $${param. as a literal', async () => {
    const p = await prep(
      'version: 1\nparams:\n  a: { type: string, default: x }\nplugins:\n  users:\n    users:\n      u: { comment: "${HOME} $${param.a} ${param.a}" }\n',
    );
    expect((p.doc.plugins.users as { users: { u: { comment: string } } }).users.u.comment).toBe('${HOME} ${param.a} x');
  });

  it('reads secrets from files, refuses an inline secret default, and masks secret values wherever they were substituted', async () => {
    const sf = join(dir, 'db-secret');
    writeFileSync(sf, 'Hunter2-very-secret\n', { mode: 0o600 });
    const text = `version: 1\nparams:\n  pw: { type: string, secret: true, from_file: ${sf} }\nplugins:\n  users:\n    users:\n      u: { comment: "pw \${param.pw}" }\n`;
    const p = await prep(text);
    expect((p.doc.plugins.users as { users: { u: { comment: string } } }).users.u.comment).toBe(
      'pw Hunter2-very-secret',
    );
    expect(scrub('x Hunter2-very-secret y')).toBe('x <secret> y');
    expect(JSON.stringify(p.redactor.withKey('k').section('users', p.doc.plugins.users))).not.toContain('Hunter2');
    const e = await fails('version: 1\nparams:\n  pw: { type: string, secret: true, default: inline }\nplugins: {}\n');
    expect(e.problems!.map((p) => p.message).join('\n')).toContain('inline default');
  });

  it('replaces { from_file: PATH } values by the file text and reports an unreadable one', async () => {
    const sf = join(dir, 'env-secret');
    writeFileSync(sf, 'TOKEN=abcdef123456\n');
    const p = await prep(`version: 1\nplugins:\n  users:\n    users:\n      u: { comment: { from_file: ${sf} } }\n`);
    expect((p.doc.plugins.users as { users: { u: { comment: string } } }).users.u.comment).toBe('TOKEN=abcdef123456');
    expect(scrub('TOKEN=abcdef123456')).toBe('<secret>');
    const e = await fails(
      `version: 1\nplugins:\n  users:\n    users:\n      u: { comment: { from_file: ${join(dir, 'missing')} } }\n`,
    );
    expect(e.problems![0]).toMatchObject({ line: 5 });
    expect(e.problems![0].message).toContain('cannot read the secret file');
  });

  it('rejects --var for a parameter the document does not declare (usage, exit 64)', async () => {
    const e = await fails(DOC, { vars: ['nope=1'] });
    expect(e.exitCode).toBe(64);
  });
});
