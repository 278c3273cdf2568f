/** Account-database helpers for the users and groups tests (names with the test's own prefix). */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';

/** Lines of /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow that mention the prefix. */
export function accountLines(prefix: string): string {
  const out: string[] = [];
  for (const f of ['/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const l of text.split('\n')) if (l.includes(prefix)) out.push(`${f}:${l}`);
  }
  return out.sort().join('\n');
}

export function groupMembers(name: string): string[] | undefined {
  for (const l of readFileSync('/etc/group', 'utf8').split('\n')) {
    const f = l.split(':');
    if (f[0] === name) return f[3] ? f[3].split(',') : [];
  }
  return undefined;
}

export function passwdEntry(name: string): string[] | undefined {
  for (const l of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = l.split(':');
    if (f[0] === name) return f;
  }
  return undefined;
}

/** Remove users, then groups, the test created (ignores what is already gone). */
export async function cleanupAccounts(users: string[], groups: string[]): Promise<void> {
  for (const u of users) await execa('userdel', [u], { reject: false });
  for (const g of groups) await execa('groupdel', [g], { reject: false });
}

/** A gid that no group uses. */
export function freeGid(from = 42000): number {
  const used = new Set(
    readFileSync('/etc/group', 'utf8')
      .split('\n')
      .map((l) => Number(l.split(':')[2])),
  );
  let g = from + Math.floor(Math.random() * 5000);
  while (used.has(g)) g++;
  return g;
}
