/** The JSON outputs' contract: validate a command's JSON output against schema/output/<kind>.schema.json. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'vitest';
import { ROOT } from './opd.js';

let ajv: Ajv2020 | undefined;

function compiler(): Ajv2020 {
  if (ajv) return ajv;
  ajv = new Ajv2020({ allErrors: true, strict: true });
  const dir = join(ROOT, 'schema/output');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.schema.json')))
    ajv.addSchema(JSON.parse(readFileSync(join(dir, f), 'utf8')) as object, f);
  return ajv;
}

export type OutputKind = 'diff' | 'apply' | 'show' | 'status' | 'audit-log' | 'fleet-status' | 'error';

/** Parse `stdout` as JSON and assert it matches the output schema of `kind`; returns it. */
export function expectOutput<T = Record<string, unknown>>(kind: OutputKind, stdout: string): T {
  const v = JSON.parse(stdout) as T;
  const check = compiler().getSchema(`${kind}.schema.json`)!;
  const ok = check(v);
  expect(ok, `${kind} output against schema/output/${kind}.schema.json: ${JSON.stringify(check.errors, null, 2)}`).toBe(
    true,
  );
  return v;
}
