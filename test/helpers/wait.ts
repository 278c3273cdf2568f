/**
 * Waiting for an event in tests: poll a condition with a generous deadline that fails loudly,
 * never a fixed sleep that stands in for the event.
 */
export async function until<T>(fn: () => Promise<T> | T, what: string, ms = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
