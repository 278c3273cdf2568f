/**
 * Unit files and drop-ins under the unit directory (default /etc/systemd/system): read with
 * node:fs, written and removed through the host doors (core/hostfs.ts: under --root, no links).
 * opd records the files it wrote per unit in <unit dir>/.opd-managed/<unit>.json (a hidden
 * directory systemd ignores), so that `state: absent` removes those files and no others.
 */
import { promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { putFile, removePath, rootOf } from '../../core/hostfs.js';
import type { ApplyContext } from '../../core/plugin.js';
import { OWNED_DIR, rel } from './names.js';

export interface UnitFiles {
  /** content of <dir>/<unit> when it is a regular file (or a symlink to one); a mask (→ /dev/null) is not a unit file */
  unitFile?: string;
  /** *.conf in <dir>/<unit>.d/ */
  dropins: Record<string, string>;
  /** relative paths opd wrote for this unit */
  owned: string[];
}

async function readText(p: string): Promise<string | undefined> {
  try {
    const st = await fsp.lstat(p);
    if (st.isSymbolicLink()) {
      const t = await fsp.readlink(p);
      if (t === '/dev/null') return undefined;
    } else if (!st.isFile()) return undefined;
    return await fsp.readFile(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function readOwned(dir: string, unit: string): Promise<string[]> {
  try {
    const j = JSON.parse(await fsp.readFile(join(dir, rel.owned(unit)), 'utf8')) as { files?: unknown };
    return Array.isArray(j.files) ? j.files.filter((f): f is string => typeof f === 'string').sort() : [];
  } catch {
    return [];
  }
}

export async function readUnitFiles(dir: string, unit: string): Promise<UnitFiles> {
  const [unitFile, names, owned] = await Promise.all([
    readText(join(dir, rel.unitFile(unit))),
    fsp.readdir(join(dir, rel.dropinDir(unit))).catch(() => [] as string[]),
    readOwned(dir, unit),
  ]);
  const dropins: Record<string, string> = {};
  const confs = names.filter((n) => n.endsWith('.conf') && !n.startsWith('.')).sort();
  const texts = await Promise.all(confs.map((n) => readText(join(dir, rel.dropin(unit, n)))));
  confs.forEach((n, i) => {
    if (texts[i] !== undefined) dropins[n] = texts[i]!;
  });
  return { ...(unitFile !== undefined ? { unitFile } : {}), dropins, owned };
}

/** Units that have an ownership record (what opd manages in this unit dir). */
export async function ownedUnits(dir: string): Promise<string[]> {
  const names = await fsp.readdir(join(dir, OWNED_DIR)).catch(() => [] as string[]);
  return names
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -5))
    .sort();
}

/** `dir` in the functions that change files: the unit directory as the host names it (the doors add --root). */
async function writeOwned(ctx: ApplyContext, dir: string, unit: string, files: string[]): Promise<void> {
  const p = join(dir, rel.owned(unit));
  if (!files.length) {
    removePath(ctx, p);
    removePath(ctx, dirname(p), { ifEmpty: true });
    return;
  }
  await putFile(ctx, p, JSON.stringify({ unit, files: [...new Set(files)].sort() }) + '\n', { mode: 0o644 });
}

/** Write one of the unit's files and record that opd wrote it. */
export async function writeUnitPath(
  ctx: ApplyContext,
  dir: string,
  unit: string,
  relPath: string,
  content: string,
): Promise<void> {
  await putFile(ctx, join(dir, relPath), content, { mode: 0o644 });
  const owned = await readOwned(rootOf(ctx.settings) + dir, unit);
  if (!owned.includes(relPath)) await writeOwned(ctx, dir, unit, [...owned, relPath]);
}

/** Remove one of the unit's files (and its empty .d directory), and forget it. */
export async function removeUnitPath(ctx: ApplyContext, dir: string, unit: string, relPath: string): Promise<void> {
  const st = await fsp.lstat(rootOf(ctx.settings) + join(dir, relPath)).catch(() => undefined);
  if (st && !st.isDirectory()) removePath(ctx, join(dir, relPath));
  if (relPath.startsWith(rel.dropinDir(unit) + '/')) removePath(ctx, join(dir, rel.dropinDir(unit)), { ifEmpty: true });
  const owned = await readOwned(rootOf(ctx.settings) + dir, unit);
  if (owned.includes(relPath))
    await writeOwned(
      ctx,
      dir,
      unit,
      owned.filter((f) => f !== relPath),
    );
}
