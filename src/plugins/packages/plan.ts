/** Pure planning for packages: one change per package; apply batches them into transactions. */
import type { Change, Obj, ResourceDiff } from '../../core/plugin.js';
import type { BackendName } from './backend.js';

export interface PackageChangeData {
  op: 'install' | 'remove';
  name: string;
  /** install: exactly this version (undefined: the candidate) */
  version?: string;
  /** remove: installed packages that go with it */
  also?: string[];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function planPackage(diff: ResourceDiff): Change<PackageChangeData>[] {
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
  if (diff.action === 'create') {
    return [
      {
        ...base,
        action: 'create',
        summary: version ? `install ${version}` : 'install',
        data: { op: 'install', name, ...(version ? { version } : {}) } satisfies PackageChangeData,
      },
    ];
  }
  if (diff.action === 'update' && version !== undefined) {
    const from = str((diff.current ?? {}).version) ?? '(unknown)';
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
