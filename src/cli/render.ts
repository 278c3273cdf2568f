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
