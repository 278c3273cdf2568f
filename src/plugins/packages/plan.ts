/** Pure planning for packages: one change per package; apply batches them into transactions. */
import type { Change, Obj, ResourceDiff } from '../../core/plugin.js';
import { isObj } from '../../core/diff.js';
import type { BackendName } from './backend.js';
import type { Artifact } from '../../host/artifact.js';
import type { Repository } from './section.gen.js';

export interface PackageChangeData {
  op: 'install' | 'remove' | 'repo-write' | 'repo-remove';
  name: string;
  /** install: exactly this version (undefined: the candidate) */
  version?: string;
  /** install: from this .deb (fetched into the source cache, verified) */
  deb?: Artifact;
  /** repo-write: the repository as the document has it */
  repo?: Repository;
  /** remove: installed packages that go with it */
  also?: string[];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** One change per repository: write it (and refresh it) or remove it. */
function planRepository(diff: ResourceDiff): Change<PackageChangeData>[] {
  const { name, address } = diff;
  const base = { address, resource: address, plugin: 'packages', ops: diff.ops };
  if (diff.action === 'delete')
    return [
      {
        ...base,
        action: 'delete',
        summary: `remove /etc/apt/sources.list.d/opd-${name}.sources and its lists`,
        data: { op: 'repo-remove', name },
      },
    ];
  if (diff.action !== 'create' && diff.action !== 'update') return [];
  const repo = diff.desired as Repository;
  const what: string[] = [];
  if (diff.action === 'update') {
    const fields = [...new Set(diff.ops.map((o) => o.path.split('/')[1]).filter(Boolean))].sort();
    what.push(`${fields.join(', ')} changed`);
  } else what.push(`${(repo.uris ?? []).join(' ')} ${(repo.suites ?? []).join(' ')}`.trim());
  const key = repo.key;
  if (key?.url !== undefined) what.push(`key from ${key.url}`);
  else if (key?.file !== undefined) what.push(`key from ${key.file}`);
  return [
    {
      ...base,
      action: diff.action,
      summary: `${diff.action === 'create' ? 'add' : 'rewrite'} repository (${what.join('; ')}), then apt-get update of it`,
      data: { op: 'repo-write', name, repo },
    },
  ];
}

function debSummary(deb: Artifact): string {
  return `from ${deb.url ?? deb.path} (sha256:${deb.sha256.slice(0, 12)})`;
}

export function planPackage(diff: ResourceDiff): Change<PackageChangeData>[] {
  if (diff.collection === 'repositories') return planRepository(diff);
  const { name, address } = diff;
  const base = { address, resource: address, plugin: 'packages', ops: diff.ops };
  if (diff.action === 'delete') {
    const cur: Obj = diff.current ?? {};
    const also = Array.isArray(cur.required_by)
      ? (cur.required_by as string[]).filter((n) => typeof n === 'string').sort()
      : [];
    return [
      {
        ...base,
        action: 'delete',
        summary: `remove ${str(cur.version) ?? ''}`.trim(),
        ...(also.length
          ? {
              destructive: true,
              reason: `also removes ${also.join(', ')} (${also.length === 1 ? 'it depends' : 'they depend'} on it)`,
            }
          : {}),
        data: { op: 'remove', name, ...(also.length ? { also } : {}) } satisfies PackageChangeData,
      },
    ];
  }
  const want: Obj = diff.desired ?? {};
  const version = str(want.version);
  const deb = isObj(want.deb) ? (want.deb as unknown as Artifact) : undefined;
  if (diff.action === 'create') {
    return [
      {
        ...base,
        action: 'create',
        summary: [version ? `install ${version}` : 'install', deb ? debSummary(deb) : ''].filter(Boolean).join(' '),
        data: {
          op: 'install',
          name,
          ...(version ? { version } : {}),
          ...(deb ? { deb } : {}),
        } satisfies PackageChangeData,
      },
    ];
  }
  if (diff.action === 'update' && deb && diff.ops.some((o) => o.path.startsWith('/deb'))) {
    // current is projected to what the document names: the installed version is known only when it pins one
    const from = str((diff.current ?? {}).version);
    return [
      {
        ...base,
        action: 'update',
        summary: `install ${debSummary(deb)} over ${from ?? 'the installed version'}`,
        data: { op: 'install', name, ...(version ? { version } : {}), deb } satisfies PackageChangeData,
      },
    ];
  }
  if (diff.action === 'update' && version !== undefined) {
    // current is projected to what the document names: the installed version is known only when it pins one
    const from = str((diff.current ?? {}).version);
    return [
      {
        ...base,
        action: 'update',
        summary: `version ${from} → ${version}`,
        data: { op: 'install', name, version } satisfies PackageChangeData,
      },
    ];
  }
  return [];
}

/** Which backend a run uses: the setting (flag/env) unless auto, then the document, then detection. */
export function requestedBackend(setting: unknown, section: unknown): BackendName | 'auto' {
  const s = typeof setting === 'string' && setting !== '' ? setting : 'auto';
  if (s !== 'auto') return s as BackendName;
  return section === 'packagekit' || section === 'apt' ? section : 'auto';
}
