// Every test file may call validateDocument() directly: get the validator ready first.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preloadValidator } from '../src/core/validate.js';

// The suite pins its own audit key: no test may depend on whether /etc/opd/audit.key exists on
// the machine. Every opd the tests spawn inherits it (execa extends process.env); a test that is
// about keys passes its own --audit-key / OPD_AUDIT_KEY.
if (!process.env.OPD_AUDIT_KEY) {
  const dir = mkdtempSync(join(tmpdir(), 'opd-test-key-'));
  const key = join(dir, 'audit.key');
  writeFileSync(key, 'opd test suite audit key: not a secret\n', { mode: 0o600 });
  process.env.OPD_AUDIT_KEY = key;
}

// Nor on the host's vars file (/etc/opd/vars.yaml, read by default): a test that is about it
// names its own with OPD_VARS_FILE.
process.env.OPD_VARS_FILE ??= '';

await preloadValidator();
