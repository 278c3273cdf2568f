/**
 * Where a command's time goes, phase by phase: `opd --profile …` (or OPD_PROFILE=1) prints one
 * line per phase on stderr when the command ends, wall and CPU time in milliseconds, from the
 * process's start (Node's own start-up is the first phase). Off, a mark costs one comparison.
 */
let marks: { phase: string; wall: number; cpu: number }[] | undefined;

/** Start recording (the CLI calls it first thing when --profile or OPD_PROFILE is given). */
export function enableProfile(): void {
  if (marks) return;
  marks = [];
  mark('node start and opd modules');
}

export function profiling(): boolean {
  return marks !== undefined;
}

/** The phase that just ended. */
export function mark(phase: string): void {
  if (!marks) return;
  const c = process.cpuUsage();
  // process.uptime(): from the process's start, without loading perf_hooks
  marks.push({ phase, wall: process.uptime() * 1000, cpu: (c.user + c.system) / 1000 });
}

/** The phases as lines (`phase  wall ms  cpu ms`), then the total; empty when not recording. */
export function profileReport(): string[] {
  if (!marks?.length) return [];
  const rows: [string, number, number][] = [];
  let wall = 0;
  let cpu = 0;
  for (const m of marks) {
    rows.push([m.phase, m.wall - wall, m.cpu - cpu]);
    wall = m.wall;
    cpu = m.cpu;
  }
  rows.push(['total', wall, cpu]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return [
    `profile: ${'phase'.padEnd(w)}  wall ms   cpu ms`,
    ...rows.map(([p, a, b]) => `profile: ${p.padEnd(w)}  ${a.toFixed(1).padStart(7)}  ${b.toFixed(1).padStart(7)}`),
  ];
}
