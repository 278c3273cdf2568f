/**
 * The etcd access options shared by `opd daemon` (fleet mode), every `opd fleet` command and
 * `opd audit verify --witness`: endpoints, credentials and TLS.
 */
import { Option, type Command } from 'commander';

export function addEtcdOptions(cmd: Command, context = ''): Command {
  const p = context ? `${context}: ` : '';
  return cmd
    .addOption(
      new Option('--etcd <endpoints>', `${p}etcd client URLs, comma-separated (env OPD_ETCD); https:// URLs use TLS`),
    )
    .addOption(new Option('--etcd-user <name>', `${p}etcd user (env OPD_ETCD_USER; see opd fleet enroll)`))
    .addOption(
      new Option('--etcd-password-file <file>', `${p}file holding the etcd password (env OPD_ETCD_PASSWORD_FILE)`),
    )
    .addOption(
      new Option(
        '--etcd-ca <file>',
        `${p}PEM CA bundle that signed etcd's server certificate (env OPD_ETCD_CA; default: the system's roots)`,
      ),
    )
    .addOption(
      new Option(
        '--etcd-cert <file>',
        `${p}PEM client certificate for etcd's --client-cert-auth (env OPD_ETCD_CERT; with --etcd-key)`,
      ),
    )
    .addOption(new Option('--etcd-key <file>', `${p}PEM private key of --etcd-cert (env OPD_ETCD_KEY)`));
}
