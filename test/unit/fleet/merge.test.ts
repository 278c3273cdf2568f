import { describe, it, expect } from 'vitest';
import { mergeFragments, selects, type Fragment } from '../../../src/fleet/merge.js';
import { parseLabels } from '../../../src/fleet/keys.js';
import { secretValues } from '../../../src/fleet/agent.js';

const frag = (id: string, plugins: Record<string, unknown>, extra: Partial<Fragment> = {}): Fragment => ({
  id,
  order: 100,
  selector: { labels: { role: 'kvm' } },
  document: { version: 1, plugins: plugins as Fragment['document']['plugins'] },
  hash: '',
  put_at: '',
  ...extra,
});

describe('fleet fragment merge', () => {
  it('merges fragments by resource address into one document whatever order they are given in', () => {
    const a = frag('a', { files: { paths: { '/etc/a': { content: 'a' } } } });
    const b = frag('b', {
      files: { paths: { '/etc/b': { content: 'b' } } },
      sysctl: { settings: { 'net.ipv4.ip_forward': { value: '1' } } },
    });
    const m1 = mergeFragments([a, b]);
    const m2 = mergeFragments([b, a]);
    expect(m1.conflict).toBeUndefined();
    expect(m1.hash).toBe(m2.hash);
    expect(m1.fragments).toEqual(['a', 'b']);
    expect(Object.keys((m1.document.plugins.files as { paths: object }).paths)).toEqual(['/etc/a', '/etc/b']);
  });

  it('merges the fields of one resource set by two fragments and orders fragments by their declared order first', () => {
    const a = frag('z-first', { files: { paths: { '/etc/x': { content: 'x' } } } }, { order: 10 });
    const b = frag('a-second', { files: { paths: { '/etc/x': { mode: '0600', content: 'x' } } } }, { order: 20 });
    const m = mergeFragments([b, a]);
    expect(m.fragments).toEqual(['z-first', 'a-second']);
    expect(m.document.plugins.files).toEqual({ paths: { '/etc/x': { content: 'x', mode: '0600' } } });
  });

  it('reports a field set differently by two fragments as a conflict naming both and the resource', () => {
    const a = frag('base', { files: { paths: { '/etc/x': { content: 'x', mode: '0644' } } } });
    const b = frag('site', { files: { paths: { '/etc/x': { mode: '0600' } } } });
    const m = mergeFragments([a, b]);
    expect(m.conflict).toEqual({
      address: 'files/paths//etc/x',
      pointer: '/plugins/files/paths/~1etc~1x/mode',
      fragments: ['base', 'site'],
    });
  });

  it('selects by host name or by all labels, and a rollout limits a fragment to the hosts given it so far', () => {
    const byLabel = frag('l', {});
    const byHost = frag('h', {}, { selector: { host: 'n1' } });
    expect(selects(byLabel, { host: 'n1', labels: { role: 'kvm', rack: '1' } })).toBe(true);
    expect(selects(byLabel, { host: 'n2', labels: { role: 'db' } })).toBe(false);
    expect(selects(byHost, { host: 'n1', labels: {} })).toBe(true);
    expect(selects(byHost, { host: 'n2', labels: {} })).toBe(false);
    expect(selects({ ...byLabel, only_hosts: ['n3'] }, { host: 'n1', labels: { role: 'kvm' } })).toBe(false);
    expect(selects(frag('none', {}, { selector: {} }), { host: 'n1', labels: {} })).toBe(false);
  });

  it('parses labels sorted by key and rejects what is not k=v', () => {
    expect(parseLabels(['zone=a', 'role=kvm,rack=2'], '--label')).toEqual({ rack: '2', role: 'kvm', zone: 'a' });
    expect(() => parseLabels(['role'], '--label')).toThrow(/not k=v/);
  });

  it('finds the values of secret fields so that status texts can be scrubbed', () => {
    const v = secretValues({
      version: 1,
      plugins: { files: { paths: { '/etc/x': { content: 's3cret-pw', mode: '0600' } } } } as never,
    });
    expect(v).toEqual(['s3cret-pw']);
  });
});
