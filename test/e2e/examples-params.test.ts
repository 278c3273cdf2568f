/**
 * The examples' parameters from outside (issue 14, acceptance 4): every example that declares a
 * required parameter fails `opd validate` with exit 65 naming it when it is not set, and
 * validates once it is given; no example holds an inline password or a placeholder address.
 * opd runs with no OPD_VAR_* in its environment and, where /etc/opd/secrets exists on this
 * machine, with an empty tmpfs over it (a private mount namespace), so that a secret file some
 * other run left there cannot stand in for an unset parameter. Needs no backend.
 */
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { OPD, type OpdRun } from '../helpers/opd.js';
import { EXAMPLES } from '../helpers/examples.js';

interface Decl {
  type?: string;
  default?: unknown;
  secret?: boolean;
  from_file?: string;
}

/** Sample values for the examples' required parameters (what an operator gives with --var). */
const SAMPLE: Record<string, string> = {
  operator: 'root',
  address: '192.168.1.10',
  gateway: '192.168.1.1',
  admin_address: '192.168.1.20',
  db_password: 'sample-db-secret',
  admin_password: 'sample-admin-secret',
};

const files = readdirSync(EXAMPLES)
  .filter((f) => /\.(ya?ml|json)$/.test(f))
  .sort();
const paramsOf = (f: string): Record<string, Decl> => {
  const text = readFileSync(join(EXAMPLES, f), 'utf8');
  const d = (f.endsWith('.json') ? JSON.parse(text) : parse(text)) as { params?: Record<string, Decl> };
  return d.params ?? {};
};
/** Required: no default (a secret's from_file is a default only while that file exists). */
const required = (f: string) =>
  Object.entries(paramsOf(f))
    .filter(([, d]) => d.default === undefined)
    .map(([n]) => n)
    .sort();
const withRequired = files.filter((f) => required(f).length > 0);

/** `opd validate FILE` with no OPD_VAR_* set and /etc/opd/secrets hidden; `vars` become OPD_VAR_*. */
async function validate(file: string, vars: Record<string, string> = {}): Promise<OpdRun> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OPD_VAR_')) env[k] = v;
  for (const [k, v] of Object.entries(vars)) env[`OPD_VAR_${k}`] = v;
  env.OPD_LOG_LEVEL = 'warn';
  const script =
    'if [ -d /etc/opd/secrets ]; then mount -t tmpfs -o mode=0700 opd-no-secrets /etc/opd/secrets || exit 70; fi; exec "$@"';
  const r = await execa(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', 'node', OPD, 'validate', file],
    { env, extendEnv: false, reject: false, timeout: 120_000 },
  );
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('the examples take their host-specific values and secrets from outside', () => {
  it('the examples with host-specific values or secrets declare them as required parameters', () => {
    // a guard on the list below: an example losing its parameters would silently shrink this test
    for (const f of [
      'quantix-kvm-node.yaml',
      'nqrust-microvm-host.yaml',
      'opdbus-full-mode.yaml',
      'opdbus-full-mode.json',
      'ravada-server.yaml',
    ])
      expect(withRequired, f).toContain(f);
    for (const f of withRequired)
      for (const p of required(f)) expect(SAMPLE, `${f}: a sample value for ${p}`).toHaveProperty(p);
  });

  for (const f of withRequired) {
    it(`${f}: opd validate exits 65 naming each required parameter that is unset, and 0 once they are given`, async () => {
      const names = required(f);
      const bare = await validate(join(EXAMPLES, f));
      expect(bare.code, bare.stdout + bare.stderr).toBe(65);
      for (const n of names) {
        expect(bare.stderr).toContain(`"${n}"`);
        expect(bare.stderr).toContain(`OPD_VAR_${n}`); // the hint says how to give it
      }
      expect(bare.stderr).not.toMatch(/\n\s+at .*\.js:\d+/); // no stack trace
      // one left out: exactly that one is named
      const [first, ...rest] = names;
      const one = await validate(join(EXAMPLES, f), Object.fromEntries(rest.map((n) => [n, SAMPLE[n]])));
      expect(one.code, one.stderr).toBe(65);
      expect(one.stderr).toContain(`"${first}"`);
      for (const n of rest) expect(one.stderr).not.toContain(`"${n}" is not set`);
      const all = await validate(join(EXAMPLES, f), Object.fromEntries(names.map((n) => [n, SAMPLE[n]])));
      expect(all.code, all.stdout + all.stderr).toBe(0);
    });
  }

  it('no example holds an inline password or a placeholder address', () => {
    for (const f of files) {
      const text = readFileSync(join(EXAMPLES, f), 'utf8');
      // documentation ranges (RFC 5737, RFC 3849) and the usual placeholders
      expect(text, f).not.toMatch(
        /\b(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+|2001:db8:|\bchangeme\b|CHANGE_?ME|<[a-z-]*(address|password|ip)>|x\.x\.x\.x/i,
      );
      // a password field is a parameter, never a literal
      for (const m of text.matchAll(/["']?(\w*password)["']?\s*:[ \t]*([^\s{#][^\n]*)/gi)) {
        const value = (/^("[^"]*"|'[^']*'|[^,}\s]+)/.exec(m[2].trim()) ?? ['', m[2]])[1];
        if (/^["']?\$\{param\.\w+\}["']?$/.test(value)) continue;
        if (m[1] === 'db_password' || m[1] === 'admin_password') continue; // a declaration: { type, secret, from_file }
        throw new Error(`${f}: ${m[1]} holds a literal value (${value.slice(0, 3)}…): make it a secret parameter`);
      }
      // every secret parameter reads a file under /etc/opd/secrets and has no inline default
      for (const [n, d] of Object.entries(paramsOf(f))) {
        if (!d.secret) continue;
        expect(d.default, `${f}: ${n}`).toBeUndefined();
        expect(d.from_file, `${f}: ${n}`).toMatch(/^\/etc\/opd\/secrets\//);
      }
    }
  });
});
