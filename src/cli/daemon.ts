import { Command, Option } from 'commander';
import { act, addAuditOptions, addSettingOptions, auditPaths, makeLogger, parseSeconds, settingsFrom } from './common.js';
import { Daemon } from '../daemon/loop.js';
import { systemdNotifier } from '../daemon/notify.js';
import { EXIT, toOpdError } from '../core/errors.js';

export function daemonCommand(): Command {
  return addAuditOptions(
    addSettingOptions(
      new Command('daemon')
        .description('reconcile continuously under systemd (Type=notify): at start, on backend events (drift), when the state file changes, on SIGHUP, on a D-Bus call and on a periodic resync')
        .requiredOption('--state <file>', 'state document to keep in force')
        .addOption(new Option('--resync <seconds>', 'full resync period (0: off)').default('300'))
        .addOption(new Option('--poll <seconds>', 'polling period for plugins without an event source').default('30'))
        .addOption(new Option('--no-watch', 'do not use event sources: poll every plugin'))
        .addOption(new Option('--debounce <ms>', 'coalesce triggers arriving within this window into one run').default('200'))
        .addOption(new Option('--backoff <seconds>', 'first retry delay of a failing resource (doubles per failure)').default('2'))
        .addOption(new Option('--backoff-cap <seconds>', 'longest retry delay of a failing resource').default('300'))
        .addOption(new Option('--allow-destroy', 'allow data-destroying operations'))
        .addOption(new Option('--rollback', 'revert a run\'s applied changes when one of its changes fails'))
        .addOption(new Option('--no-dbus', 'do not offer the D-Bus API (org.opd.Reconciler1, org.opdbus)'))
        .addOption(new Option('--metrics <[host:]port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (off by default; HOST defaults to 127.0.0.1)')),
    ),
  ).action(act(async (_opts: Record<string, unknown>, cmd: Command) => {
    const o = cmd.optsWithGlobals();
    const log = await makeLogger({ logLevel: 'info', ...o });
    const audit = auditPaths(o);
    const daemon = new Daemon({
      stateFile: o.state as string,
      settings: settingsFrom(o),
      log,
      auditLog: audit.log,
      auditKey: audit.key,
      allowDestroy: o.allowDestroy === true,
      rollback: o.rollback === true,
      resyncMs: parseSeconds(o.resync as string, '--resync', 300) * 1000,
      pollMs: parseSeconds(o.poll as string, '--poll', 30) * 1000,
      watch: o.watch !== false,
      debounceMs: parseSeconds(o.debounce as string, '--debounce', 200),
      backoffBaseMs: parseSeconds(o.backoff as string, '--backoff', 2) * 1000,
      backoffCapMs: parseSeconds(o.backoffCap as string, '--backoff-cap', 300) * 1000,
      notifier: systemdNotifier(process.env, log),
    });
    let stopping: Promise<void> | undefined;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const stop = (sig: string) => {
      if (stopping) return;
      log.info({ signal: sig }, 'stopping');
      stopping = daemon.stop().then(resolveDone);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      log.info('SIGHUP: reloading the state document');
      void daemon.reload(true);
    });
    let api: { dispose(): Promise<void> } | undefined;
    let metricsServer: import('node:http').Server | undefined;
    if (o.metrics !== undefined) {
      const { DaemonMetrics } = await import('../daemon/metrics.js');
      metricsServer = (await new DaemonMetrics(daemon).listen(o.metrics as string, log)).server;
    }
    try {
      await daemon.start(async () => {
        if (o.dbus === false) return;
        try {
          api = await (await import('../daemon/dbus-api.js')).startDbusApi(daemon);
        } catch (err) {
          const e = toOpdError(err);
          log.error({ err: e.message, hint: e.hint }, 'D-Bus API unavailable; reconciling without it');
        }
      });
    } catch (err) {
      metricsServer?.close();
      throw err;
    }
    log.info({ status: daemon.statusLine(), watching: daemon.watching, polling: daemon.polling }, 'ready');
    await done;
    await api?.dispose();
    await new Promise((r) => (metricsServer ? metricsServer.close(r) : r(undefined)));
    log.info({ runs: daemon.runs }, 'stopped');
    return EXIT.ok;
  }));
}
