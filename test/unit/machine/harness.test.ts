/**
 * The machine harness (test/machine/harness.ts) holds an example to its shipped bytes: the sha256
 * of the document opd read, as every run.start of the audit trail records it, must be the shipped
 * file's. A deliberately edited copy of an example (one comment line changed) fails the check.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { notShipped, parseAudit, sha256, type AuditEntry } from '../../machine/harness.js';
import { prepareFile } from '../../../src/core/engine.js';
import { registry } from '../../../src/plugins/index.js';
import { ROOT, tmp } from '../../helpers/opd.js';

const EXAMPLE = 'hyper2kvm-daemon.yaml';
const STATE = '/etc/opd/state.yaml';

/** The run.start entry opd writes for a document: its hash as prepareFile computes it (src/run/record.ts). */
async function runStart(file: string, run: string): Promise<AuditEntry> {
  const prep = await prepareFile(registry, file, {}, { vars: [], env: {} });
  return { seq: 1, run, type: 'run.start', document: prep.docHash, file: STATE };
}

describe('the machine harness', () => {
  it('accepts the runs of the shipped example', async () => {
    const entries = [await runStart(join(ROOT, 'examples', EXAMPLE), 'r1')];
    expect(entries[0].document).toBe(sha256(readFileSync(join(ROOT, 'examples', EXAMPLE))));
    expect(notShipped(entries, STATE, EXAMPLE)).toEqual([]);
  });

  it('fails a run of a deliberately edited copy, naming the run', async () => {
    const copy = join(tmp('opd-harness-'), EXAMPLE);
    writeFileSync(
      copy,
      readFileSync(join(ROOT, 'examples', EXAMPLE), 'utf8').replace('# Apply:', '# Apply (edited by a test):'),
    );
    const entries = [await runStart(join(ROOT, 'examples', EXAMPLE), 'r1'), await runStart(copy, 'r2')];
    const diff = notShipped(entries, STATE, EXAMPLE);
    expect(diff).toHaveLength(1);
    expect(diff[0]).toMatch(
      /^run r2 applied \/etc\/opd\/state\.yaml with sha256 [0-9a-f]{16}…, not the shipped examples\/hyper2kvm-daemon\.yaml/,
    );
  });

  it('fails when the audit trail has no run of the document at all', () => {
    expect(notShipped(parseAudit(''), STATE, EXAMPLE)).toEqual([`no run of ${STATE} in the audit trail`]);
  });
});
