/** The environment and failure report of the documentation tests (test/docs/). */
import type { DocCommand } from './doc-blocks.js';

/**
 * The environment a reader starts from: no OPD_* setting of the test suite or the machine leaks
 * in (a sandbox variable would change what opd touches), and no audit key (the suite pins one;
 * a reader following the page has none, and /etc/opd/audit.key of this machine must not count).
 */
export function cleanEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const k of Object.keys(process.env)) if (k.startsWith('OPD_')) env[k] = undefined;
  env.OPD_AUDIT_KEY = '/nonexistent/opd-doc-test-no-audit-key';
  return env;
}

export function report(page: string, c: DocCommand, r: { output: string[]; code: number }): string {
  return [
    `${page}:${c.line}: $ ${c.command.split('\n')[0]}`,
    '--- the page shows:',
    ...c.expected,
    `--- opd printed (exit ${r.code}):`,
    ...r.output,
  ].join('\n');
}
