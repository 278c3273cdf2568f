/**
 * virsh through src/exec.ts: single commands as argv, and batches of read commands fed to
 * one virsh process on stdin (virsh's own command parser). Only names that pass SAFE_NAME
 * ever reach a batch; anything else is read with one argv process of its own.
 */
import { randomBytes } from 'node:crypto';
import { runMutate, runRead, ExecFailure, type ExecResult } from '../../exec.js';
import { OpdError } from '../../core/errors.js';
import type { ApplyContext, Settings } from '../../core/plugin.js';
import { LIBVIRT_URI, TUNABLES } from './manifest.js';
import { settingOf } from '../../core/manifest.js';

export const INSTALL_HINT =
  'apt-get install libvirt-clients (and libvirt-daemon-system qemu-system-x86 on the host that runs the guests)';

/** Names that are safe inside virsh's own command language (and match the schema). */
export const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/;

export function uri(settings: Settings): string {
  return settingOf(settings, LIBVIRT_URI)!;
}

function translate(err: unknown, u: string): never {
  if (err instanceof ExecFailure) {
    const s = err.stderr;
    if (
      /failed to connect to the hypervisor|Failed to connect socket|no connection driver available|Connection refused|No such file or directory.*sock/i.test(
        s,
      )
    )
      throw new OpdError(
        'backend-unavailable',
        `libvirt is not reachable at ${u}: ${s.trim().split('\n').slice(-1)[0]}`,
        {
          hint: `start libvirtd (scripts/backends/libvirt.sh up, or systemctl start libvirtd) or point --libvirt-uri / OPD_LIBVIRT_URI elsewhere`,
        },
      );
    if (/Failed to get "write" lock/.test(s))
      throw new OpdError('backend-failed', err.message, {
        hint: 'a running domain holds this image: stop it (running: false) before resizing or deleting the volume',
      });
    if (/Cannot access storage file .*Permission denied/i.test(s))
      throw new OpdError('backend-failed', err.message, {
        hint: 'QEMU runs as its own user (libvirt-qemu on Debian): every directory above the image must be searchable by it (chmod o+x) and the image readable',
      });
    if (/authentication (failed|unavailable)|access denied|Failed to connect socket.*Permission denied/i.test(s))
      throw new OpdError('permission', `libvirt refused access at ${u}: ${s.trim().split('\n').slice(-1)[0]}`, {
        hint: 'run opd as root or as a member of the libvirt group',
      });
  }
  throw err;
}

type VirshOpts = { input?: string; okCodes?: number[]; timeout?: number };
const virshOpts = (opts: VirshOpts) => ({
  backend: 'libvirt',
  installHint: INSTALL_HINT,
  timeout: opts.timeout ?? TUNABLES.virshMs,
  input: opts.input,
  okCodes: opts.okCodes,
});

/** One virsh command that only looks (dumpxml, domstate, list): the read door. argv form (names never pass through a shell). */
export async function virsh(settings: Settings, args: string[], opts: VirshOpts = {}): Promise<ExecResult> {
  const u = uri(settings);
  try {
    return await runRead('virsh', ['-c', u, ...args], virshOpts(opts));
  } catch (err) {
    translate(err, u);
  }
}

/** One virsh command that changes libvirt (define, start, destroy…): the mutate door, an apply only. */
export async function virshMutate(ctx: ApplyContext, args: string[], opts: VirshOpts = {}): Promise<ExecResult> {
  const u = uri(ctx.settings);
  try {
    return await runMutate(ctx, 'virsh', ['-c', u, ...args], virshOpts(opts));
  } catch (err) {
    translate(err, u);
  }
}

/** Quote one argument for virsh's command parser (only used for SAFE_NAME values). */
function vq(s: string): string {
  if (!SAFE_NAME.test(s) && !/^--[a-z-]+$/.test(s))
    throw new OpdError('bug', `unsafe virsh batch argument ${JSON.stringify(s)}`);
  return `'${s}'`;
}

/**
 * Run read-only commands in ONE virsh process (stdin batch). Returns each command's stdout
 * (empty when that command failed, e.g. an object that does not exist). Command words and
 * options are fixed strings of this module; every other argument must match SAFE_NAME.
 */
export async function batch(settings: Settings, cmds: string[][]): Promise<string[]> {
  if (!cmds.length) return [];
  const nonce = randomBytes(6).toString('hex');
  const mark = (i: number) => `@@opd-${nonce}-${i}`;
  const lines: string[] = [];
  cmds.forEach((c, i) => {
    lines.push(`echo ${mark(i)}`);
    lines.push([c[0], ...c.slice(1).map(vq)].join(' '));
  });
  lines.push(`echo ${mark(cmds.length)}`);
  lines.push('quit');
  const r = await virsh(settings, [], { input: lines.join('\n') + '\n' });
  return splitBatch(r.stdout, nonce, cmds);
}

/** Split a batch's stdout at the echo markers; drops the prompts virsh echoes ("virsh # cmd"). */
export function splitBatch(text: string, nonce: string, cmds: string[][]): string[] {
  const mark = (i: number) => `@@opd-${nonce}-${i}`;
  const out: string[] = [];
  for (let i = 0; i < cmds.length; i++) {
    const a = text.indexOf(`\n${mark(i)}\n`);
    const b = text.indexOf(`\n${mark(i + 1)}\n`);
    const s0 = a >= 0 ? a : text.startsWith(`${mark(i)}\n`) ? -1 : NaN;
    if (Number.isNaN(s0) || b < 0)
      throw new OpdError('backend-failed', `virsh batch output could not be parsed (command ${cmds[i][0]})`, {
        hint: 'run the command by hand: virsh -c URI ' + cmds[i].join(' '),
      });
    const seg = text.slice(s0 + mark(i).length + 2, b + 1);
    out.push(
      seg
        .split('\n')
        .filter((l) => !/^virsh # /.test(l) && l !== 'virsh #')
        .join('\n')
        .trim(),
    );
  }
  return out;
}

export function names(list: string): string[] {
  return list
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
    .sort();
}
