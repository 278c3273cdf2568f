/**
 * Prometheus metrics of `opd daemon --metrics HOST:PORT` (prom-client): runs, run duration,
 * changes by plugin and outcome, drift detected/repaired, failing and unknown resources,
 * backoff, the last successful run, audit entries. Off by default; HOST defaults to loopback.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import type { Daemon, RunSummary } from './loop.js';
import { OpdError } from '../core/errors.js';

/** `9464`, `127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464` → host and port (host defaults to 127.0.0.1). */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d+)$/.exec(v) ?? /^()()(\d+)$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new OpdError('usage', `--metrics needs [HOST:]PORT, got ${JSON.stringify(v)}`, {
      hint: 'e.g. --metrics 127.0.0.1:9464 (loopback; give 0.0.0.0:9464 to serve every interface)',
    });
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/** A counter in `registry` (every counter of the daemon is one of these). */
function counter(registry: Registry, name: string, help: string, labelNames: string[] = []): Counter {
  return new Counter({ name, help, labelNames, registers: [registry] });
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private runs = counter(
    this.registry,
    'opd_runs_total',
    'reconcile runs, by status (ok, noop, failed, blocked, error) and trigger (drift or other)',
    ['status', 'trigger'],
  );
  private duration = new Histogram({
    name: 'opd_run_duration_seconds',
    help: 'duration of reconcile runs',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  private changes = counter(
    this.registry,
    'opd_changes_total',
    'changes applied, by plugin and outcome (ok, failed, skipped, refused)',
    ['plugin', 'outcome'],
  );
  private driftDetected = counter(this.registry, 'opd_drift_detected_total', 'resources found changed outside opd');
  private driftRepaired = counter(
    this.registry,
    'opd_drift_repaired_total',
    'drifted resources put back by the run that found them',
  );
  private driftBy = counter(
    this.registry,
    'opd_drift_attributed_total',
    'drifted resources by plugin and how their actor was learned (source; unknown when it could not be)',
    ['plugin', 'source'],
  );
  private auditWritten = counter(
    this.registry,
    'opd_audit_entries_total',
    'audit trail entries written by this daemon',
  );
  private lastOk = new Gauge({
    name: 'opd_last_successful_run_timestamp_seconds',
    help: 'when the last run that ended ok or with nothing to do finished (unix time)',
    registers: [this.registry],
  });
  private lastSeq?: number;

  constructor(daemon: Daemon) {
    const d = daemon;
    const reg = [this.registry];
    new Gauge({
      name: 'opd_resources',
      help: 'resources the document names, by state (converged, failing, pending, unknown)',
      labelNames: ['state'],
      registers: reg,
      collect() {
        const n: Record<string, number> = { converged: 0, failing: 0, pending: 0, unknown: 0 };
        for (const r of d.resources.values()) n[r.state] = (n[r.state] ?? 0) + 1;
        for (const [state, v] of Object.entries(n)) this.set({ state }, v);
      },
    });
    new Gauge({
      name: 'opd_resources_failing',
      help: 'resources whose last attempt failed',
      registers: reg,
      collect() {
        this.set(d.failing().length);
      },
    });
    new Gauge({
      name: 'opd_resources_backoff',
      help: 'failing resources waiting for their next attempt (capped exponential backoff)',
      registers: reg,
      collect() {
        const now = Date.now();
        this.set([...d.resources.values()].filter((r) => r.nextAttemptAt && r.nextAttemptAt > now).length);
      },
    });
    new Gauge({
      name: 'opd_backoff_seconds',
      help: 'seconds until the next attempt of a backing-off resource',
      labelNames: ['address'],
      registers: reg,
      collect() {
        this.reset();
        const now = Date.now();
        for (const r of d.resources.values())
          if (r.nextAttemptAt && r.nextAttemptAt > now)
            this.set({ address: r.address }, (r.nextAttemptAt - now) / 1000);
      },
    });
    new Gauge({
      name: 'opd_plugin_unreachable',
      help: "1 while a plugin's backend is down (its resources are unknown)",
      labelNames: ['plugin'],
      registers: reg,
      collect() {
        this.reset();
        for (const p of d.prep?.plugins.keys() ?? [])
          this.set({ plugin: p }, d.lastRun?.unreachable?.includes(p) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'opd_drift_corrected',
      help: 'drifts corrected since start (as opd status shows)',
      registers: reg,
      collect() {
        this.set(d.driftCount);
      },
    });
    new Gauge({
      name: 'opd_audit_last_seq',
      help: 'sequence number of the last audit trail entry',
      registers: reg,
      collect: () => {},
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'opd_' });
    daemon.on('finished', (s: RunSummary) => this.observe(s));
    // bounded labels: the plugin and the source, never the actor (a pid, a command line)
    daemon.on('attributed', (address: string, a: { source: string }) =>
      this.driftBy.inc({ plugin: address.split('/')[0], source: a.source }),
    );
  }

  observe(s: RunSummary): void {
    this.runs.inc({ status: s.status, trigger: s.drift.length ? 'drift' : (s.reasons[0]?.split(':')[0] ?? 'other') });
    this.duration.observe(s.duration_ms / 1000);
    for (const o of s.outcomes) this.changes.inc({ plugin: o.address.split('/')[0], outcome: o.status });
    this.driftDetected.inc(s.drift.length);
    const repaired = s.drift.filter((a) => {
      const mine = s.outcomes.filter((o) => o.address === a || o.address.startsWith(a + '/'));
      return mine.length > 0 && mine.every((o) => o.status === 'ok');
    });
    this.driftRepaired.inc(repaired.length);
    if (s.status === 'ok' || s.status === 'noop') this.lastOk.set(Date.parse(s.at) / 1000);
    if (s.audit_seq !== undefined) {
      if (this.lastSeq !== undefined && s.audit_seq > this.lastSeq) this.auditWritten.inc(s.audit_seq - this.lastSeq);
      this.lastSeq = s.audit_seq;
      (this.registry.getSingleMetric('opd_audit_last_seq') as Gauge).set(s.audit_seq);
    }
  }

  /** Serve GET /metrics; resolves with the bound address once listening. */
  async listen(spec: string, log: Logger): Promise<{ server: Server; address: string }> {
    const { host, port } = parseListen(spec);
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('opd serves /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message + '\n'),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new OpdError(
            err.code === 'EACCES' ? 'permission' : 'usage',
            `--metrics ${spec}: cannot listen: ${err.message}`,
            { hint: 'choose another port, or stop what listens there' },
          ),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    const a = server.address();
    const address =
      a && typeof a === 'object' ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : spec;
    log.info({ metrics: `http://${address}/metrics` }, 'serving metrics');
    return { server, address };
  }
}
