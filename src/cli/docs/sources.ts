/**
 * Everything the generated documentation is made from, gathered in one place: the command tree
 * (with every command loaded), the schemas, the daemon's D-Bus objects and its metrics registry.
 */
import { readFileSync } from 'node:fs';
import { commandTree, version } from '../main.js';
import { describeCommand, type CommandDoc } from './reference.js';
import { SchemaWalker } from './schema-doc.js';
import type { DaemonApiDoc, MetricDoc } from './man.js';
import { API_DOCS, BUS_NAME, OPDBUS_NAME, apiObjects } from '../../daemon/dbus-api.js';
import { DaemonMetrics } from '../../daemon/metrics.js';
import type { Daemon } from '../../daemon/loop.js';

export interface Sources {
  version: string;
  root: CommandDoc;
  schemas: SchemaWalker;
  api: DaemonApiDoc;
  metrics: MetricDoc[];
}

/** The daemon's D-Bus objects as exported (the methods are only listed, never called). */
export function daemonApi(): DaemonApiDoc {
  const stub = { o: { settings: {} } } as unknown as Daemon;
  return {
    objects: apiObjects(stub).map((obj) => ({
      name: obj.interface.startsWith(OPDBUS_NAME) ? OPDBUS_NAME : BUS_NAME,
      path: obj.path,
      interface: obj.interface,
      methods: Object.entries(obj.methods).map(([name, m]) => ({
        name,
        in: m.in,
        out: m.out,
        doc: API_DOCS[`${obj.interface}.${name}`] ?? '',
      })),
      signals: Object.entries(obj.signals ?? {}).map(([name, type]) => ({
        name,
        type,
        doc: API_DOCS[`${obj.interface}.${name}`] ?? '',
      })),
    })),
  };
}

/** The daemon's own metrics (Node's process metrics, opd_process_* and opd_nodejs_*, left out). */
export function daemonMetrics(): MetricDoc[] {
  const stub = { on: () => stub } as unknown as Daemon;
  const m = new DaemonMetrics(stub);
  return m.registry
    .getMetricsAsArray()
    .map((x) => {
      const a = x as unknown as { name: string; help: string; type: string; labelNames?: string[] };
      return { name: a.name, help: a.help, type: String(a.type), labels: [...(a.labelNames ?? [])] };
    })
    .filter((x) => !/^opd_(process|nodejs)_/.test(x.name))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function gather(): Promise<Sources> {
  return {
    version: version(),
    root: describeCommand(await commandTree()),
    schemas: new SchemaWalker(),
    api: daemonApi(),
    metrics: daemonMetrics(),
  };
}

/** package.json, for the version and description. */
export function packageJson(): { version: string; description: string } {
  return JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
    description: string;
  };
}
