/**
 * Semantic checks: what the schema cannot say but a backend would refuse at apply time. The
 * rules are the plugins' (`rules` of each manifest, src/plugins/<name>/manifest.ts; the registry
 * hands them over as `registry.rules`); this runs them. A rule reports located problems
 * (file:line:col, as schema errors) and runs offline: it reads the document and files on disk
 * (under --root), never a backend.
 */
import { isObj } from './diff.js';
import { invalidDocument, type Problem } from './errors.js';
import { pathToPointer } from './document.js';
import type { LoadedDocument, StateDocument } from './document.js';
import type { Obj, Settings } from './plugin.js';

export interface SemanticContext {
  doc: StateDocument;
  settings: Settings;
}

export interface SemanticRule {
  id: string;
  /** what it catches, for the README and --help */
  description: string;
  check(ctx: SemanticContext): Problem[];
}

/** The JSON pointer of a place in a plugin section: `sectionPointer('net', 'interfaces', 'br0')`. */
export const sectionPointer = (...p: (string | number)[]) => pathToPointer(['plugins', ...p]);
/** A resource that is present (an object whose state is not absent). */
export const present = (v: unknown): v is Obj => isObj(v) && v.state !== 'absent';
/** The present entries of a collection (anything else: none). */
export const presentEntries = (v: unknown): [string, Obj][] =>
  isObj(v) ? (Object.entries(v).filter(([, x]) => present(x)) as [string, Obj][]) : [];

/** Run every rule; throws invalid-document (exit 65) with all problems, located like schema errors. */
export function checkSemantics(
  doc: StateDocument,
  loaded: LoadedDocument | undefined,
  settings: Settings,
  rules: readonly SemanticRule[],
): void {
  const problems: Problem[] = [];
  for (const r of rules)
    for (const p of r.check({ doc, settings })) {
      if (loaded) {
        const pos = loaded.locate(p.pointer);
        Object.assign(p, { file: loaded.file, line: pos?.line, col: pos?.col });
      }
      problems.push({ ...p, message: `${p.message} [${r.id}]` });
    }
  if (!problems.length) return;
  throw invalidDocument(loaded?.file, problems);
}
