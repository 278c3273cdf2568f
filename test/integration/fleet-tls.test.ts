/**
 * Fleet mode over TLS: a real etcd member of this test's own (loopback ports 24796/24896, data and
 * certificates in a temporary directory, ended by its pid) serving https with client-certificate
 * authentication; certificates made with openssl. A daemon takes its options from a config file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { opd, tmp, doc, uniq, OPD } from '../helpers/opd.js';
import { until } from '../helpers/etcd.js';

const CLIENT_PORT = 24796;
const PEER_PORT = 24896;
const ENDPOINT = `https://127.0.0.1:${CLIENT_PORT}`;
const id = uniq(4);

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await execa('openssl', args, { cwd, reject: false });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all EC P-256. */
async function makeCerts(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=opd-test-ca'],
    dir,
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'],
    ['client', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    writeFileSync(join(dir, `${name}.ext`), ext);
    await openssl(
      ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=opd-test-${name}`],
      dir,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        `${name}.ext`,
      ],
      dir,
    );
  }
}

describe('opd fleet over TLS, with a daemon configured by a file', () => {
  let dir: string;
  let etcd: ResultPromise | undefined;
  let daemon: ResultPromise | undefined;
  let daemonOut = '';
  const pem = (f: string) => join(dir, f);
  const tlsEnv = () => ({
    OPD_ETCD: ENDPOINT,
    OPD_ETCD_CA: pem('ca.crt'),
    OPD_ETCD_CERT: pem('client.crt'),
    OPD_ETCD_KEY: pem('client.key'),
  });
  const host = `tls-${id}`;

  beforeAll(async () => {
    dir = tmp('opd-fleet-tls-');
    await makeCerts(dir);
    etcd = execa(
      'etcd',
      [
        '--name',
        'tls1',
        '--data-dir',
        join(dir, 'data'),
        '--listen-client-urls',
        ENDPOINT,
        '--advertise-client-urls',
        ENDPOINT,
        '--listen-peer-urls',
        `http://127.0.0.1:${PEER_PORT}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${PEER_PORT}`,
        '--initial-cluster',
        `tls1=http://127.0.0.1:${PEER_PORT}`,
        '--initial-cluster-state',
        'new',
        '--cert-file',
        pem('server.crt'),
        '--key-file',
        pem('server.key'),
        '--client-cert-auth',
        '--trusted-ca-file',
        pem('ca.crt'),
      ],
      { reject: false, stdio: ['ignore', 'ignore', 'pipe'], buffer: false },
    );
    writeFileSync(join(dir, 'etcd.pid'), String(etcd.pid));
    await until(
      async () => {
        const r = await execa(
          'etcdctl',
          [
            '--endpoints',
            ENDPOINT,
            '--cacert',
            pem('ca.crt'),
            '--cert',
            pem('client.crt'),
            '--key',
            pem('client.key'),
            '--command-timeout=2s',
            'endpoint',
            'health',
          ],
          {
            reject: false,
            env: { ETCDCTL_API: '3' },
          },
        );
        if (etcd?.exitCode !== null && etcd?.exitCode !== undefined)
          throw new Error(`etcd exited with ${etcd.exitCode}`);
        return r.exitCode === 0;
      },
      'the TLS etcd member healthy',
      60_000,
    );
  });

  afterAll(async () => {
    if (daemon?.pid && daemon.exitCode === null) process.kill(daemon.pid, 'SIGTERM');
    await daemon;
    if (etcd?.pid && etcd.exitCode === null) process.kill(etcd.pid, 'SIGTERM');
    await etcd;
  });

  it('converges a daemon whose endpoints, labels and TLS files come from its config file, the command line winning over the file', async () => {
    const root = join(dir, 'host');
    const cfg = doc(
      [
        `etcd: [${ENDPOINT}]`,
        'host: name-from-the-file',
        'labels: { role: tls }',
        `etcd-ca: ${pem('ca.crt')}`,
        `etcd-cert: ${pem('client.crt')}`,
        `etcd-key: ${pem('client.key')}`,
        `root: ${root}`,
        `audit-log: ${join(root, 'var/lib/opd/audit.jsonl')}`,
        'dbus: false',
        'poll: 1',
        'debounce: 50',
        'lease-ttl: 3',
        '',
      ].join('\n'),
      dir,
      'daemon.yaml',
    );
    daemon = execa(process.execPath, [OPD, 'daemon', '--config', cfg, '--host', host], {
      reject: false,
      all: true,
      buffer: false,
      env: { OPD_LOG_LEVEL: 'info' },
    });
    daemon.all?.on('data', (b: Buffer) => (daemonOut += b.toString()));
    const f = doc(
      'version: 1\nplugins:\n  files:\n    /etc/motd: { content: "over tls\\n", mode: "0644" }\n',
      tmp(),
      'tls-role.yaml',
    );
    await until(
      async () => {
        const r = await opd(['fleet', 'status', '-o', 'json'], { env: tlsEnv() });
        if (r.code !== 0) throw new Error(`fleet status exit ${r.code}: ${r.stderr}\n${daemonOut}`);
        return (JSON.parse(r.stdout) as { hosts: { host: string; alive: boolean }[] }).hosts.some(
          (x) => x.host === host && x.alive,
        );
      },
      `${host} alive`,
      60_000,
    );
    const put = await opd(['fleet', 'put', f, '--selector', 'role=tls'], { env: tlsEnv() });
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    const rows = await until(
      async () => {
        const r = await opd(['fleet', 'status', '-o', 'json'], { env: tlsEnv() });
        const rs = (JSON.parse(r.stdout) as { hosts: { host: string; converged: boolean; fragments: string[] }[] })
          .hosts;
        return rs.some((x) => x.host === host && x.converged && x.fragments.includes('tls-role')) ? rs : undefined;
      },
      `${host} converged on tls-role`,
      60_000,
    );
    expect(rows.map((r) => r.host)).toEqual([host]);
    expect(readFileSync(join(root, 'etc/motd'), 'utf8')).toBe('over tls\n');
  });

  it('is refused by etcd without a client certificate: exit 77 with a hint about the certificates, no stack trace', async () => {
    const r = await opd(['fleet', 'status', '--etcd-ca', pem('ca.crt')], {
      env: { ...tlsEnv(), OPD_ETCD_CERT: '', OPD_ETCD_KEY: '' },
    });
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/^opd: etcd: .*bad certificate/);
    expect(r.stderr).toContain('hint: the TLS handshake with etcd failed');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects TLS files with a plain http:// endpoint, and a client certificate without its key, as usage errors', async () => {
    const plain = await opd(['fleet', 'status', '--etcd', `http://127.0.0.1:${CLIENT_PORT}`], { env: tlsEnv() });
    expect(plain.code).toBe(64);
    expect(plain.stderr).toContain('not https:// URLs: http://127.0.0.1:24796');
    const nokey = await opd(['fleet', 'status'], { env: { ...tlsEnv(), OPD_ETCD_KEY: '' } });
    expect(nokey.code).toBe(64);
    expect(nokey.stderr).toContain('--etcd-cert and --etcd-key go together');
    const notpem = await opd(['fleet', 'status', '--etcd-ca', join(dir, 'server.ext')], { env: tlsEnv() });
    expect(notpem.code).toBe(64);
    expect(notpem.stderr).toContain(`cannot use --etcd-ca ${join(dir, 'server.ext')}: not a PEM file`);
  });

  it('refuses a config file with an unknown key or a wrongly typed value, naming file:line, and starts nothing', async () => {
    const cfg = doc(`etcd: ${ENDPOINT}\nhots: kvm1\nlabels: [1, 2]\ndbus: maybe\n`, tmp(), 'bad.yaml');
    const r = await opd(['daemon', '--config', cfg], { timeout: 30_000 });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(`${cfg}:2:1: hots: unknown option \`hots\``);
    expect(r.stderr).toContain(`${cfg}:3:9: labels:`);
    expect(r.stderr).toContain(`${cfg}:4:7: dbus: \`dbus\` is a switch`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });
});
