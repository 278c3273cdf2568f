/** Rendering helpers shared by commands. */
import type { Plan } from '../core/plan.js';
import type { Redactor } from '../core/secrets.js';

/** Secrets never reach output: redact the RFC 6902 values of every change. */
export function redactPlan(plan: Plan, r: Redactor): Plan {
  return {
    diffs: plan.diffs,
    changes: plan.changes.map((c) => {
      const [plugin, collection] = c.resource.split('/');
      return { ...c, ops: c.ops ? r.ops(plugin, collection, c.ops) : undefined };
    }),
  };
}

export function ms(n: number): string {
  return n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`;
}

/** Resources of plugins whose backend is down: shown as unknown, in human and JSON output. */
export interface UnknownShown {
  plugin: string;
  error: string;
  hint?: string;
  resources: string[];
}

export function unknownJSON(u: { plugin: string; error: { message: string; hint?: string }; resources: string[] }[]): UnknownShown[] {
  return u.map((x) => ({ plugin: x.plugin, error: x.error.message, ...(x.error.hint ? { hint: x.error.hint } : {}), resources: x.resources }));
}

export function unknownLines(u: UnknownShown[]): string[] {
  const lines: string[] = [];
  for (const x of u) for (const r of x.resources) lines.push(`? ${r}: unknown (${x.plugin} unreachable)`);
  return lines;
}
