import { describe, expect, it } from 'vitest';
import { compareVersions, evaluate, failures, type Facts } from '../../../../src/plugins/checks/index.js';

const facts = (over: Partial<Facts> = {}): Facts => ({
  virtFlags: false,
  kvm: true,
  memMb: 2048,
  cpus: 2,
  kernel: '6.1.0-18-amd64',
  arch: 'x86_64',
  os: { id: 'debian', idLike: [], versionId: '12' },
  listening: new Set([22]),
  diskFreeMb: () => 500,
  ...over,
});

describe('checks', () => {
  it('compares kernel and OS versions numerically', () => {
    expect(compareVersions('6.1.0-18-amd64', '5.10')).toBe(1);
    expect(compareVersions('5.10', '5.10.0')).toBe(0);
    expect(compareVersions('5.4', '5.10')).toBe(-1);
  });
  it('counts a usable /dev/kvm as CPU virtualization without vmx/svm flags', () => {
    expect(evaluate({ cpu_virtualization: true }, facts()).cpu_virtualization).toBe(true);
    expect(
      evaluate({ cpu_virtualization: true }, facts({ kvm: '/dev/kvm does not exist' })).cpu_virtualization,
    ).toMatch(/no vmx\/svm flag/);
  });
  it('reads a check that holds back as the document says', () => {
    const want = {
      min_memory_mb: 1024,
      min_cpus: 2,
      min_disk_free_mb: { '/srv': 100 },
      tcp_ports_free: [80],
      kernel_min: '5.10',
      arch: ['x86_64'],
      os: { id: ['debian', 'ubuntu'], version_min: '11' },
    };
    expect(evaluate(want, facts())).toEqual(want);
  });
  it('says which check failed and by how much', () => {
    const want = {
      min_memory_mb: 4096,
      min_disk_free_mb: { '/srv': 1000 },
      tcp_ports_free: [22, 80],
      arch: ['aarch64'],
      os: { id: 'fedora' },
    };
    const f = failures(evaluate(want, facts()), want);
    expect(f).toEqual([
      'min_memory_mb: the host has 2048 MiB of memory, needs 4096 (short by 2048 MiB)',
      'min_disk_free_mb /srv: 500 MiB free, needs 1000 (short by 500 MiB)',
      'tcp_ports_free: port 22 is already listened on',
      'arch: the host is x86_64, needs aarch64',
      'os.id: the host runs debian, needs fedora',
    ]);
  });
});
