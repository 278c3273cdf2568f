/** A count of calls by name (processes spawned by command, D-Bus calls by member), for benchmarks. */
export class CallCounter {
  total = 0;
  private byName = new Map<string, number>();

  count(name: string): void {
    this.total++;
    this.byName.set(name, (this.byName.get(name) ?? 0) + 1);
  }

  /** Counts by name, sorted. */
  names(): Record<string, number> {
    return Object.fromEntries([...this.byName].sort());
  }

  reset(): void {
    this.total = 0;
    this.byName.clear();
  }
}
