import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { readFileSync, existsSync } from 'node:fs';
import { doc, opd, tmp } from '../helpers/opd.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { kvmUsable, virtFlags } from '../helpers/host.js';

let ns: Netns;
let env: Record<string, string>;
let dir: string;
let server: Server;
let busyPort: number;

const osId = /^ID=(.*)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1].replace(/"/g, '') ?? 'debian';

describe('checks plugin (read-only preconditions)', () => {
  beforeAll(async () => {
    ns = await createNetns('opdchk');
    dir = tmp('opd-checks-');
    env = { OPD_AUDIT_LOG: join(dir, 'audit.jsonl'), OPD_NETNS: ns.name };
    server = createServer();
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    busyPort = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server?.close();
    await ns?.remove();
  });

  it('passes the size, kernel and OS checks this host meets', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      any-host:
        min_memory_mb: 256
        min_cpus: 1
        min_disk_free_mb: { /var/lib/opd-test-not-yet-created/images: 10 }
        kernel_min: "4.19"
        os: { id: [${osId}, ubuntu] }
`,
      dir,
      'pass.yaml',
    );
    const r = await opd(['apply', p], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('no changes');
    expect((await opd(['diff', p], { env })).code).toBe(0);
  });

  it('passes the KVM checks on a host with a usable /dev/kvm and blocks naming both on a host without one', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      kvm-host:
        cpu_virtualization: true
        kvm_device: true
`,
      dir,
      'kvm.yaml',
    );
    const r = await opd(['apply', p], { env });
    const d = await opd(['diff', p], { env });
    if (kvmUsable()) {
      // /dev/kvm counts as CPU virtualization even where the flags are hidden (nested guests)
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('no changes');
      expect(d.code).toBe(0);
    } else {
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toContain('blocked checks/require/kvm-host');
      expect(r.stdout).toMatch(/kvm_device: \/dev\/kvm (does not exist|cannot be opened)/);
      // without /dev/kvm, the flags alone decide cpu_virtualization
      if (virtFlags()) expect(r.stdout).not.toContain('cpu_virtualization:');
      else expect(r.stdout).toMatch(/cpu_virtualization: no vmx\/svm flag in \/proc\/cpuinfo/);
      expect(r.stdout).toContain('nothing was applied');
      expect(d.code).toBe(2);
    }
  });

  it('stops the whole run before anything is applied and says which check failed and by how much', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      big-host:
        min_memory_mb: 999999999
        kernel_min: "99.0"
  net:
    interfaces:
      chkbr0: { kind: bridge, up: true }
`,
      dir,
      'fail.yaml',
    );
    const before = await ns.ipDump();
    const r = await opd(['apply', p], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /blocked checks\/require\/big-host: min_memory_mb: the host has \d+ MiB of memory, needs 999999999 \(short by \d+ MiB\)/,
    );
    expect(r.stdout).toContain('kernel_min: the kernel is');
    expect(r.stdout).toContain('nothing was applied');
    expect(await ns.ipDump()).toBe(before);
    expect(await ns.ipDump()).not.toContain('chkbr0');
    const d = await opd(['diff', p], { env });
    expect(d.code).toBe(2);
    expect(d.stdout).toContain('short by');
  });

  it('fails a port check when something listens on the port', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      ports: { tcp_ports_free: [${busyPort}] }
`,
      dir,
      'port.yaml',
    );
    const r = await opd(['apply', p], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`port ${busyPort} is already listened on`);
  });

  it('rejects hostile paths with exit 65', async () => {
    const p = doc(
      `
version: 1
plugins:
  checks:
    require:
      disk: { min_disk_free_mb: { "/var/../etc;rm -rf /": 1 } }
`,
      dir,
      'hostile.yaml',
    );
    expect((await opd(['apply', p], { env })).code).toBe(65);
  });

  it('writes no change to the audit trail for checks that hold or block, and the trail verifies', async () => {
    const log = env.OPD_AUDIT_LOG;
    // blocked and no-op runs write nothing at all: the trail may not even exist yet
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    expect(text).not.toContain('"type":"change"');
    expect(text).not.toContain('"type":"run.start"');
    expect((await opd(['audit', 'verify'], { env })).code).toBe(0);
  });
});
