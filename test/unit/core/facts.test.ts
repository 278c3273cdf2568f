/**
 * The fact source (src/core/facts.ts) on faked hosts, `${fact.NAME}` and `when:` in documents,
 * and NQRust's example on an Intel and an AMD host (its vendor KVM module with nested=1).
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { FACT_NAMES, FACTS, readHostFacts, type HostFacts } from '../../../src/core/facts.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { parseText } from '../../../src/core/document.js';
import { OpdError } from '../../../src/core/errors.js';
import { registry } from '../../../src/plugins/index.js';
import { planModule } from '../../../src/plugins/kmod/index.js';
import { ROOT, tmp } from '../../helpers/opd.js';

interface FakeHost {
  vendor: string;
  flags: string;
  cpus?: number;
  kvm?: boolean;
  modules?: boolean;
  capSysModule?: boolean;
  container?: string;
  os?: string;
}

const KERNEL = '6.1.0-28-amd64';

/** A host as files under a directory: /proc, /etc/os-release, /dev/kvm, /lib/modules. */
function fakeHost(h: FakeHost): string {
  const r = tmp('opd-facts-');
  const w = (p: string, text: string) => {
    mkdirSync(join(r, p, '..'), { recursive: true });
    writeFileSync(join(r, p), text);
  };
  const cpu = (i: number) => `processor\t: ${i}\nvendor_id\t: ${h.vendor}\nflags\t\t: fpu vme ${h.flags} sse2\n\n`;
  w('proc/cpuinfo', Array.from({ length: h.cpus ?? 4 }, (_, i) => cpu(i)).join(''));
  w('proc/meminfo', 'MemTotal:       16384000 kB\n');
  w('proc/sys/kernel/osrelease', `${KERNEL}\n`);
  w(
    'proc/self/status',
    `Name:\tnode\nCapEff:\t${h.capSysModule === false ? '000001fffffeffff' : '000001ffffffffff'}\n`,
  );
  w('etc/os-release', h.os ?? 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n');
  if (h.modules !== false) {
    w('proc/modules', 'kvm 1142784 1 kvm_intel, Live 0x0\n');
    mkdirSync(join(r, 'lib/modules', KERNEL), { recursive: true });
  }
  if (h.kvm !== false) w('dev/kvm', '');
  if (h.container) w('run/systemd/container', `${h.container}\n`);
  return r;
}

const intel: FakeHost = { vendor: 'GenuineIntel', flags: 'vmx ept' };
const amd: FakeHost = { vendor: 'AuthenticAMD', flags: 'svm npt' };

const facts = (h: FakeHost): HostFacts => readHostFacts({ root: fakeHost(h), arch: 'x86_64' });

describe('the fact source', () => {
  it('reads an Intel host with loadable modules', () => {
    const f = facts(intel);
    expect(f.values).toEqual({
      arch: 'x86_64',
      container: false,
      cpu_vendor: 'intel',
      cpu_virt_flag: 'vmx',
      cpus: 4,
      kernel: KERNEL,
      kvm_device: true,
      memory_mb: 16000,
      modules_loadable: true,
      os_codename: 'bookworm',
      os_id: 'debian',
      os_version_id: '12',
    });
    expect(f.why).toEqual({});
  });

  it('reads an AMD host', () => {
    const f = facts(amd);
    expect(f.values.cpu_vendor).toBe('amd');
    expect(f.values.cpu_virt_flag).toBe('svm');
  });

  it('says why modules cannot be loaded: no module support, no modules for the kernel, no CAP_SYS_MODULE', () => {
    expect(facts({ ...amd, modules: false }).why.modules_loadable).toMatch(/\/proc\/modules does not exist/);
    const noCap = facts({ ...amd, capSysModule: false });
    expect(noCap.values.modules_loadable).toBe(false);
    expect(noCap.why.modules_loadable).toMatch(/CAP_SYS_MODULE/);
  });

  it('sees a container as systemd does (/run/systemd/container), and a missing /dev/kvm', () => {
    const f = facts({ ...intel, container: 'systemd-nspawn', kvm: false, flags: '' });
    expect(f.values.container).toBe(true);
    expect(f.why.container).toBe('container manager: systemd-nspawn');
    expect(f.values.kvm_device).toBe(false);
    expect(f.why.kvm_device).toBe('/dev/kvm does not exist');
    expect(f.values.cpu_virt_flag).toBe('none');
  });

  it('maps other vendors to other (Hygon to amd, Centaur to intel)', () => {
    expect(facts({ ...amd, vendor: 'HygonGenuine' }).values.cpu_vendor).toBe('amd');
    expect(facts({ ...intel, vendor: 'CentaurHauls' }).values.cpu_vendor).toBe('intel');
    expect(facts({ ...intel, vendor: 'ARM' }).values.cpu_vendor).toBe('other');
  });

  it('reads this host without failing, every fact of the table with its declared type', () => {
    const f = readHostFacts();
    for (const n of FACT_NAMES) {
      const t = FACTS[n].type;
      expect(typeof f.values[n], n).toBe(t === 'integer' ? 'number' : t);
    }
  });

  it("lists the same facts, with the same types, as the schema's when: (schema/common.schema.json)", () => {
    const common = JSON.parse(readFileSync(join(ROOT, 'schema/common.schema.json'), 'utf8')) as {
      $defs: { when: { properties: Record<string, { type?: string; else?: { type?: string; enum?: string[] } }> } };
    };
    const props = common.$defs.when.properties;
    expect(Object.keys(props).sort()).toEqual([...FACT_NAMES]);
    for (const n of FACT_NAMES) {
      const d = FACTS[n] as { type: string; values?: readonly string[] };
      const single = d.type === 'boolean' ? props[n] : props[n].else;
      if (d.values) expect(single?.enum, n).toEqual([...d.values]);
      else expect(single?.type, n).toBe(d.type);
    }
  });
});

async function prep(text: string, f: HostFacts, vars: string[] = []) {
  return prepareLoaded(registry, parseText(Buffer.from(text), 'doc.yaml'), {}, { vars, env: {} }, f);
}

async function problems(text: string, f: HostFacts): Promise<string[]> {
  try {
    await prep(text, f);
  } catch (err) {
    expect(err).toBeInstanceOf(OpdError);
    expect((err as OpdError).exitCode).toBe(65);
    return ((err as OpdError).problems ?? []).map(
      (p) => `${p.line}:${p.col} ${p.message}${p.fix ? ` (${p.fix})` : ''}`,
    );
  }
  throw new Error('the document was accepted');
}

describe('facts in documents', () => {
  it('substitutes ${fact.NAME} in keys and values; a whole value keeps its type', async () => {
    const p = await prep(
      'version: 1\nplugins:\n  kmod:\n    modules:\n      "kvm_${fact.cpu_vendor}": { persist: true, options: "nested=1" }\n  sysctl:\n    keys:\n      net.ipv4.ip_forward: { value: "${fact.cpus}", persist: "${fact.kvm_device}" }\n',
      facts(amd),
    );
    expect(Object.keys(p.doc.plugins.kmod.modules as object)).toEqual(['kvm_amd']);
    expect((p.doc.plugins.sysctl.keys as Record<string, { persist: unknown }>)['net.ipv4.ip_forward'].persist).toBe(
      true,
    );
  });

  it('keeps a resource whose when: holds, without when:, and leaves out one whose when: does not (and depends_on on it)', async () => {
    const p = await prep(
      [
        'version: 1',
        'plugins:',
        '  kmod:',
        '    modules:',
        '      kvm: { persist: true, when: { modules_loadable: true } }',
        '      kvm_amd: { persist: true, when: { cpu_vendor: amd } }',
        '      kvm_intel: { persist: true, when: { cpu_vendor: [intel], modules_loadable: true } }',
        '      vhost_net: { persist: true, depends_on: [kmod/modules/kvm_intel, kmod/modules/kvm_amd] }',
      ].join('\n'),
      facts({ ...amd, modules: false }),
    );
    expect(p.doc.plugins.kmod.modules).toEqual({
      kvm_amd: { persist: true },
      vhost_net: { persist: true, depends_on: ['kmod/modules/kvm_amd'] },
    });
    expect(p.excluded.map((e) => `${e.address}: ${e.reason}`)).toEqual([
      'kmod/modules/kvm: modules_loadable is false (/proc/modules does not exist (a kernel without loadable module support)), needs true',
      'kmod/modules/kvm_intel: cpu_vendor is "amd", needs "intel"; modules_loadable is false (/proc/modules does not exist (a kernel without loadable module support)), needs true',
    ]);
    expect(p.loaded.locate(p.excluded[0].pointer, true)).toEqual({ line: 5, col: 29 });
  });

  it('refuses an unknown fact (exit 65) naming file:line:col and the fact it looks like, in ${fact.} and in when:', async () => {
    expect(
      await problems(
        'version: 1\nplugins:\n  kmod:\n    modules:\n      "kvm_${fact.cpu_vendr}": { persist: true }\n',
        facts(amd),
      ),
    ).toEqual([
      '5:7 unknown fact "cpu_vendr" in "${fact.cpu_vendr}" (did you mean "cpu_vendor"? (opd facts lists them))',
    ]);
    expect(
      await problems(
        'version: 1\nplugins:\n  kmod:\n    modules:\n      kvm: { persist: true, when: { modules_loadble: true, cpu_vendor: intle } }\n',
        facts(amd),
      ),
    ).toEqual([
      '5:37 unknown key "modules_loadble" (did you mean "modules_loadable"?)',
      '5:72 expected one of "intel", "amd", "other", got "intle"',
    ]);
  });
});

describe("NQRust's example on an Intel and on an AMD host (faked facts)", () => {
  const text = readFileSync(join(ROOT, 'examples/nqrust-microvm-host.yaml'));
  const resolve = (h: FakeHost) =>
    prepareLoaded(
      registry,
      parseText(text, 'nqrust-microvm-host.yaml'),
      {},
      { vars: ['db_password=x'], env: {} },
      facts(h),
    );

  for (const [host, mod] of [
    [intel, 'kvm_intel'],
    [amd, 'kvm_amd'],
  ] as const) {
    it(`loads and persists kvm and ${mod} with nested=1 on the ${mod === 'kvm_intel' ? 'Intel' : 'AMD'} host`, async () => {
      const p = await resolve(host);
      expect(p.excluded).toEqual([]);
      const modules = p.doc.plugins.kmod.modules as Record<string, object>;
      expect(Object.keys(modules).sort()).toEqual(['kvm', mod]);
      expect(modules[mod]).toEqual({ loaded: true, persist: true, options: 'nested=1' });
      // the kmod plan on a host that has neither yet: the files, then modprobe of the vendor's module
      const changes = planModule({
        plugin: 'kmod',
        collection: 'modules',
        name: mod,
        address: `kmod/modules/${mod}`,
        action: 'create',
        current: { loaded: false, persist: false },
        desired: modules[mod] as Record<string, unknown>,
        ops: [
          { op: 'replace', path: '/loaded', value: true },
          { op: 'replace', path: '/persist', value: true },
          { op: 'add', path: '/options', value: 'nested=1' },
        ],
        allowDestroy: false,
      });
      expect(changes.map((c) => `${c.address} ${c.action}: ${c.summary}`)).toEqual([
        `kmod/modules/${mod}/files update: write /etc/modules-load.d/opd-${mod}.conf, options (none) → "nested=1"`,
        `kmod/modules/${mod} load: with modprobe ${mod}`,
      ]);
    });
  }

  it('leaves both modules out in a container, and validates its absent twin the same way', async () => {
    const p = await resolve({ ...intel, container: 'lxc', capSysModule: false });
    expect(p.excluded.map((e) => e.address)).toEqual(['kmod/modules/kvm', 'kmod/modules/kvm_intel']);
    expect(p.doc.plugins.kmod).toEqual({ modules: {} });
    const absent = parse(readFileSync(join(ROOT, 'examples/nqrust-microvm-host-absent.yaml'), 'utf8')) as {
      plugins: { kmod: { modules: object } };
    };
    expect(Object.keys(absent.plugins.kmod.modules)).toEqual(['kvm', 'kvm_${fact.cpu_vendor}']);
  });
});
