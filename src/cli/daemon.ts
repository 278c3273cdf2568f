import { Command, Option } from 'commander';
import { addEtcdOptions } from './etcd-options.js';
import { applyConfigFile } from './config-file.js';
import {
  act,
  addOptions,
  addVarOptions,
  varsFrom,
  addAuditOptions,
  auditPaths,
  makeLogger,
  parseSeconds,
} from './common.js';
import { addSettingOptions, settingsFrom } from './settings.js';
import { Daemon } from '../daemon/loop.js';
import { systemdNotifier } from '../daemon/notify.js';
import { EXIT, OpdError, toOpdError } from '../core/errors.js';
import { trapStopSignals } from './signals.js';
import { registry } from '../plugins/index.js';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';

export function daemonCommand(): Command {
  return addVarOptions(
    addAuditOptions(
      addEtcdOptions(
        addSettingOptions(
          addOptions(
            new Command('daemon').description(
              'reconcile continuously under systemd (Type=notify): at start, on backend events (drift), when the state file changes, on SIGHUP, on a D-Bus call and on a periodic resync',
            ),
            [
              [
                '--state <file>',
                'state document to keep in force (fleet mode: where the document from etcd is kept; default beside the audit log)',
              ],
              [
                '--config <file>',
                'read options from this YAML file: keys are the long option names (etcd, host, labels, lease-ttl, etcd-ca, poll, …); the command line and OPD_* environment win',
              ],
              ['--host <name>', "fleet mode: this host's name in the fleet (env OPD_FLEET_HOST; default the hostname)"],
              new Option(
                '--label <k=v>',
                'fleet mode: a label of this host, repeatable (env OPD_FLEET_LABELS=k=v,k=v)',
              ).argParser((v: string, prev: string[] = []) => [...prev, v]),
              [
                '--fleet-keys <file>',
                'fleet mode: the operator public keys (PEM, several for a rotation; env OPD_FLEET_KEYS): only fragments signed by one of them whose signed selector selects this host are applied',
              ],
              [
                '--lease-ttl <seconds>',
                'fleet mode: the liveness key expires this long after the daemon stops renewing it',
                '10',
              ],
              ['--resync <seconds>', 'full resync period (0: off)', '300'],
              ['--poll <seconds>', 'polling period for plugins without an event source', '30'],
              ['--no-watch', 'do not use event sources: poll every plugin'],
              [
                '--debounce <ms>',
                'wait this long after the first trigger before a run (0: run at once; triggers during a run make the next run)',
                '0',
              ],
              ['--backoff <seconds>', 'first retry delay of a failing resource (doubles per failure)', '2'],
              ['--backoff-cap <seconds>', 'longest retry delay of a failing resource', '300'],
              ['--allow-destroy', 'allow data-destroying operations'],
              ['--rollback', "revert a run's applied changes when one of its changes fails"],
              ['--no-dbus', 'do not offer the D-Bus API (org.opd.Reconciler1, org.opdbus)'],
              [
                '--metrics <[host:]port>',
                'serve Prometheus metrics at http://HOST:PORT/metrics (off by default; HOST defaults to 127.0.0.1)',
              ],
            ],
          ),
        ),
        'fleet mode',
      ),
    ),
  ).action(
    act(async (_opts: Record<string, unknown>, cmd: Command) => {
      const given = cmd.optsWithGlobals();
      if (given.config !== undefined) applyConfigFile(cmd, given.config as string);
      const o = cmd.optsWithGlobals();
      const log = await makeLogger({ logLevel: 'info', ...o });
      const audit = auditPaths(o);
      const etcd = (o.etcd as string | undefined) ?? process.env.OPD_ETCD;
      if (!etcd && !o.state)
        throw new OpdError('usage', 'opd daemon needs --state FILE, or --etcd ENDPOINTS (fleet mode)', {
          hint: 'opd daemon --state /etc/opd/state.yaml, or opd daemon --etcd http://127.0.0.1:2379 --host NAME',
        });
      let fleet: import('../fleet/agent.js').FleetAgent | undefined;
      let stateFile = o.state as string | undefined;
      if (etcd) {
        const { FleetAgent } = await import('../fleet/agent.js');
        const { parseEndpoints, parseLabels, checkName } = await import('../fleet/keys.js');
        const { accessFrom } = await import('../fleet/store.js');
        const host = checkName('host', (o.host as string | undefined) ?? process.env.OPD_FLEET_HOST ?? hostname());
        const labels = parseLabels(
          [
            ...(process.env.OPD_FLEET_LABELS ? [process.env.OPD_FLEET_LABELS] : []),
            ...((o.label as string[] | undefined) ?? []),
          ],
          '--label',
        );
        stateFile ??= join(dirname(audit.log), `fleet-${host}.json`);
        const keysFile = (o.fleetKeys as string | undefined) ?? process.env.OPD_FLEET_KEYS;
        if (keysFile) {
          const { loadTrustedKeys } = await import('../fleet/sign.js');
          const keys = loadTrustedKeys(keysFile);
          log.info(
            { keys: [...keys.keys()].sort(), file: keysFile },
            'fragments are verified against these operator keys',
          );
        } else
          log.warn(
            'fragments are not verified (no --fleet-keys): whoever can write this host’s copies in etcd configures it',
          );
        fleet = new FleetAgent({
          access: accessFrom(parseEndpoints(etcd), o),
          host,
          labels,
          stateFile,
          auditLog: audit.log,
          ...(keysFile ? { keysFile } : {}),
          leaseTtlS: Math.max(2, Math.round(parseSeconds(o.leaseTtl as string, '--lease-ttl', 10))),
          log,
        });
        await fleet.prepare();
      }
      const daemon = new Daemon({
        registry,
        stateFile: stateFile!,
        vars: varsFrom(o),
        settings: settingsFrom(o),
        log,
        auditLog: audit.log,
        auditKey: audit.key,
        allowDestroy: o.allowDestroy === true,
        rollback: o.rollback === true,
        resyncMs: parseSeconds(o.resync as string, '--resync', 300) * 1000,
        pollMs: parseSeconds(o.poll as string, '--poll', 30) * 1000,
        watch: o.watch !== false,
        debounceMs: parseSeconds(o.debounce as string, '--debounce', 0),
        backoffBaseMs: parseSeconds(o.backoff as string, '--backoff', 2) * 1000,
        backoffCapMs: parseSeconds(o.backoffCap as string, '--backoff-cap', 300) * 1000,
        notifier: systemdNotifier(process.env, log),
      });
      let stopping: Promise<void> | undefined;
      let resolveDone!: () => void;
      const done = new Promise<void>((r) => (resolveDone = r));
      const stop = (sig: string) => {
        if (stopping) return;
        log.info({ signal: sig }, 'stopping: finishing the changes in flight, starting no new one');
        stopping = daemon
          .stop(sig)
          .then(() => fleet?.stop())
          .then(resolveDone);
      };
      // the first SIGTERM/SIGINT stops cleanly (run.end `interrupted`, exit 0: what the unit
      // expects); a second one aborts the changes in flight and exits 143/130 at once
      trapStopSignals(stop, (sig) => {
        log.warn({ signal: sig }, 'second signal: aborting the changes in flight; the next start recovers them');
        daemon.abortNow(sig);
      });
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
      fleet?.attach(daemon);
      log.info({ status: daemon.statusLine(), watching: daemon.watching, polling: daemon.polling }, 'ready');
      await done;
      await api?.dispose();
      await new Promise((r) => (metricsServer ? metricsServer.close(r) : r(undefined)));
      log.info({ runs: daemon.runs }, 'stopped');
      return EXIT.ok;
    }),
  );
}
