/** exec as data (src/core/manifest.ts): what the rest of opd knows of it without loading it. */
import type { PluginManifest } from '../../core/manifest.js';

export const TUNABLES = {
  /** An exec step's `timeout:` when the document names none; coreutils timeout's --kill-after; the door's limit beyond both. */
  execStepS: 300,
  execStepKillAfterS: 10,
  execStepGraceMs: 30_000,
  /** An exec step's guard command (creates/unless/onlyif: a read). */
  execGuardMs: 60_000,
} as const;

const manifest: PluginManifest = {
  name: 'exec',
  collections: ['commands'],
  tunables: TUNABLES,
  load: () => import('./index.js'),
};
export default manifest;
