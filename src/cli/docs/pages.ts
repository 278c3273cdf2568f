/**
 * Which page of docs/ holds which generated region, and the man pages: `npm run docs` (and the
 * build, for the man pages) writes them through scripts/gen-docs.mjs; test/unit/cli/docs.test.ts
 * fails while a committed page differs from what this produces.
 */
import { stringify } from 'yaml';
import type { Sources } from './sources.js';
import {
  apiTable,
  cliReference,
  documentReference,
  exitCodeTable,
  fillRegions,
  metricsTable,
  pluginIndex,
  pluginReference,
  region,
} from './markdown.js';
import { daemonPage, opdPage, statePage, useYaml, type ManOptions } from './man.js';

const yaml = (v: unknown) => stringify(v, { lineWidth: 0, flowCollectionPadding: true });

/** The regions of each page, by page path (relative to the repository). */
export function regions(s: Sources): Record<string, Record<string, string>> {
  const pages: Record<string, Record<string, string>> = {
    'docs/cli.md': { cli: cliReference(s.root) },
    'docs/troubleshooting.md': { 'exit-codes': exitCodeTable() },
    'docs/daemon.md': { 'dbus-api': apiTable(s.api), metrics: metricsTable(s.metrics) },
    'docs/documents.md': { document: documentReference(s.schemas.section('(document)'), yaml) },
    'docs/plugins/README.md': { plugins: pluginIndex(s.schemas) },
  };
  for (const name of s.schemas.plugins())
    pages[`docs/plugins/${name}.md`] = { reference: pluginReference(s.schemas.section(name), yaml) };
  return pages;
}

/** A new plugin page: a title, room for prose, the generated reference. */
export function skeleton(page: string, s: Sources): string {
  const name = page.replace(/^docs\/plugins\/|\.md$/g, '');
  const title = s.schemas.section(name).title.replace(/^[a-z]+ plugin: /, '');
  return `# ${name} — ${title}\n\n## Reference\n\n${region('reference', '')}\n`;
}

/** The page with its regions filled from the sources. */
export function render(page: string, text: string, s: Sources): string {
  const r = regions(s)[page];
  if (!r) throw new Error(`${page} has no generated regions`);
  return fillRegions(text, r, page);
}

export function manPages(s: Sources, o: ManOptions): Record<string, string> {
  useYaml(yaml);
  return {
    'opd.1': opdPage(s.root, o),
    'opd-state.5': statePage(s.schemas, o),
    'opd-daemon.8': daemonPage(s.root, s.api, s.metrics, o),
  };
}
