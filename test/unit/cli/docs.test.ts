/**
 * The generated documentation is complete and current: every schema field has a real description
 * and an example that the schema accepts; the man pages name every command, flag, schema field,
 * exit code, environment variable, D-Bus member and metric; the committed docs/ pages are what
 * `npm run docs` would write; docs/ has the pages a reader needs, README stays short, and every
 * relative link of the documentation leads to a file that exists.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { gather, type Sources } from '../../../src/cli/docs/sources.js';
import { manPages, regions, render } from '../../../src/cli/docs/pages.js';
import { allCommands } from '../../../src/cli/docs/reference.js';
import { loadSchemas } from '../../../src/core/validate.js';
import { EXIT } from '../../../src/core/errors.js';
import { EXIT_CODES } from '../../../src/core/exit-codes.js';
import { prepareLoaded } from '../../../src/core/engine.js';
import { parseText } from '../../../src/core/document.js';
import { registry } from '../../../src/plugins/index.js';

const ROOT = join(__dirname, '../../..');
let s: Sources;
let man: Record<string, string>;

beforeAll(async () => {
  s = await gather();
  man = manPages(s, { version: s.version, date: '2026-01-01' });
});

/** Man page text as a reader searches it: roff escapes of - and \ undone. */
const plain = (roff: string) => roff.replace(/\\-/g, '-').replace(/\\e/g, '\\').replace(/\\&/g, '');

/** The part of opd(1) about one command: from its .SS heading to the next one. */
function manSection(page: string, usage: string): string {
  const text = plain(page);
  const at = text.indexOf(`.SS "${usage}`);
  if (at < 0) return '';
  const next = text.indexOf('\n.SS ', at + 1);
  const sh = text.indexOf('\n.SH ', at + 1);
  const end = [next, sh].filter((x) => x > 0);
  return text.slice(at, end.length ? Math.min(...end) : undefined);
}

describe('the schemas document every field', () => {
  it('gives every field of every section a description of its own', () => {
    const bad: string[] = [];
    for (const name of ['(document)', ...s.schemas.plugins()])
      for (const f of s.schemas.section(name).fields) {
        const d = f.description ?? '';
        // a description says what the field does: not empty, not just its default
        if (d.trim().length < 12 || /^default\b/i.test(d.trim())) bad.push(`${name}: ${f.path} (${f.source.file})`);
      }
    expect(bad, 'write a description for these fields in their schema files').toEqual([]);
  });

  it('gives every field that holds a value an example, and the schema accepts each example', () => {
    const ajv = new Ajv2020({ strict: false, allowUnionTypes: true });
    for (const [, schema] of loadSchemas()) ajv.addSchema(schema as object);
    const missing: string[] = [];
    const rejected: string[] = [];
    for (const name of ['(document)', ...s.schemas.plugins()])
      for (const f of s.schemas.section(name).fields) {
        if (f.refused) continue;
        if (f.example === undefined) {
          if (!f.container) missing.push(`${name}: ${f.path}`);
          continue;
        }
        const id = (loadSchemas().get(f.source.file) as { $id: string }).$id;
        const v = ajv.getSchema(`${id}#${f.source.pointer}`);
        if (!v) throw new Error(`no schema at ${f.source.file}#${f.source.pointer}`);
        if (!v(f.example)) rejected.push(`${name}: ${f.path}: ${JSON.stringify(f.example)}`);
      }
    expect(missing, 'add "examples" to these fields').toEqual([]);
    expect(rejected, 'these examples do not fit their own field').toEqual([]);
  });

  it('gives every plugin section a whole example, and each is a valid document', async () => {
    for (const name of s.schemas.plugins()) {
      const sec = s.schemas.section(name);
      expect(sec.examples.length, `${sec.file} needs a root "examples" entry`).toBeGreaterThan(0);
      const used = [...JSON.stringify(sec.examples[0]).matchAll(/\$\{param\.(\w+)\}/g)].map((m) => m[1]);
      const doc = {
        version: 1,
        ...(used.length ? { params: Object.fromEntries(used.map((p) => [p, { type: 'string', default: 'x' }])) } : {}),
        plugins: { [name]: sec.examples[0] },
      };
      await expect(prepareLoaded(registry, parseText(JSON.stringify(doc), `${name} example`))).resolves.toBeDefined();
    }
    const envelope = s.schemas.section('(document)').examples[0];
    await expect(
      prepareLoaded(
        registry,
        parseText(JSON.stringify(envelope), 'document example'),
        {},
        {
          vars: ['operator=alice'],
          varsFiles: [],
          env: {},
        },
      ),
    ).resolves.toBeDefined();
  });
});

describe('the man pages', () => {
  it('opd(1) has a section for every command, naming each of its arguments and flags', () => {
    const page = man['opd.1'];
    const missing: string[] = [];
    for (const c of allCommands(s.root).slice(1)) {
      const sec = manSection(page, c.usage);
      if (!sec) {
        missing.push(`command ${c.path.join(' ')}`);
        continue;
      }
      for (const o of c.options)
        if (!sec.includes(`\\fB${o.long ?? o.short!}\\fR`)) missing.push(`${c.path.join(' ')} ${o.flags}`);
      for (const a of c.args) if (!sec.includes(a.name)) missing.push(`${c.path.join(' ')} <${a.name}>`);
    }
    expect(missing).toEqual([]);
  });

  it('opd(1) gives every exit code, and every exit code of EXIT has a meaning and a fix', () => {
    const codes = new Set(EXIT_CODES.map((e) => e.code));
    expect([...new Set(Object.values(EXIT))].filter((c) => !codes.has(c))).toEqual([]);
    const exit = plain(man['opd.1']).split('.SH EXIT STATUS')[1].split('\n.SH ')[0];
    for (const e of EXIT_CODES) {
      expect(exit).toContain(`.TP\n\\fB${e.code}\\fR`);
      expect(e.fix.length).toBeGreaterThan(5);
    }
  });

  it('opd(1) describes every OPD_* environment variable the code reads', () => {
    const env = plain(man['opd.1']).split('.SH ENVIRONMENT')[1].split('\n.SH ')[0];
    const read = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.gen.ts'))
          for (const m of readFileSync(p, 'utf8').matchAll(/\bOPD_[A-Z0-9_]+[A-Z0-9]\b(?!_)/g)) read.add(m[0]);
      }
    };
    walk(join(ROOT, 'src'));
    expect(read.size).toBeGreaterThan(20);
    const missing = [...read].filter((v) => !env.includes(`\\fB${v}`));
    expect(missing, 'describe these in src/cli/docs/man.ts ENV_EXTRA or in a flag').toEqual([]);
  });

  it('opd-state(5) lists every field of every plugin section and of the document', () => {
    const page = plain(man['opd-state.5']);
    const missing: string[] = [];
    for (const name of ['(document)', ...s.schemas.plugins()]) {
      if (name !== '(document)' && !page.includes(`.SS "${name}:`)) missing.push(`section ${name}`);
      for (const f of s.schemas.section(name).fields)
        if (!page.includes(`\\fB${f.path}\\fR`)) missing.push(`${name}: ${f.path}`);
    }
    for (const r of s.schemas.refused()) if (!page.includes(`\\fB${r.name}\\fR`)) missing.push(`refused ${r.name}`);
    expect(missing).toEqual([]);
  });

  it('opd-daemon(8) names every flag of opd daemon, every D-Bus method and signal, every metric', () => {
    const page = plain(man['opd-daemon.8']);
    const daemon = s.root.commands.find((c) => c.name === 'daemon')!;
    const missing: string[] = [];
    for (const o of daemon.options) if (!page.includes(`\\fB${o.long ?? o.short}`)) missing.push(o.flags);
    for (const obj of s.api.objects) {
      for (const m of obj.methods) {
        if (!page.includes(`\\fB${m.name}\\fR(`)) missing.push(`method ${m.name}`);
        if (m.doc.length < 10) missing.push(`API_DOCS entry for ${obj.interface}.${m.name}`);
      }
      for (const x of obj.signals) {
        if (!page.includes(`signal \\fB${x.name}\\fR`)) missing.push(`signal ${x.name}`);
        if (x.doc.length < 10) missing.push(`API_DOCS entry for ${obj.interface}.${x.name}`);
      }
    }
    expect(s.metrics.length).toBeGreaterThan(5);
    for (const m of s.metrics) if (!page.includes(`\\fB${m.name}\\fR`)) missing.push(`metric ${m.name}`);
    expect(missing).toEqual([]);
  });

  it('are well-formed for man: a NAME line each, and groff renders them without warnings', async () => {
    const { execa } = await import('execa');
    for (const [file, text] of Object.entries(man)) {
      expect(text, file).toMatch(/^\.SH NAME\n[a-z-]+ \\- \S/m);
      const r = await execa('groff', ['-man', '-Tutf8', '-ww', '-z', '-t'], { input: text, reject: false });
      expect(r.stderr, `${file}: groff warnings`).toBe('');
    }
  });
});

describe('docs/', () => {
  it('is current: every generated region is what npm run docs writes', () => {
    const stale: string[] = [];
    for (const page of Object.keys(regions(s))) {
      const file = join(ROOT, page);
      if (!existsSync(file)) {
        stale.push(`${page} (missing)`);
        continue;
      }
      const text = readFileSync(file, 'utf8');
      if (render(page, text, s) !== text) stale.push(page);
    }
    expect(stale, 'run `npm run docs` and commit the pages').toEqual([]);
  });

  it('has the pages a reader needs, one per plugin, and a changelog in Keep a Changelog form', () => {
    for (const p of [
      'README.md',
      'install.md',
      'tutorial.md',
      'concepts.md',
      'documents.md',
      'cli.md',
      'output.md',
      'daemon.md',
      'fleet.md',
      'security.md',
      'troubleshooting.md',
      'benchmarks.md',
      'examples.md',
      'plugins/README.md',
      ...s.schemas.plugins().map((n) => `plugins/${n}.md`),
    ])
      expect(existsSync(join(ROOT, 'docs', p)), `docs/${p}`).toBe(true);
    const cl = readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8');
    expect(cl).toMatch(/^# Changelog/m);
    expect(cl).toMatch(/keepachangelog\.com/);
    expect(cl).toMatch(/^## \[Unreleased\]/m);
    expect(cl).toMatch(/^## \[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}$/m);
  });

  it('keeps README.md to at most 250 lines, saying how to run opd from a checkout and where the docs are', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
    expect(readme).toMatch(/bin\/opd\.js/);
    expect(readme).toMatch(/\(docs\/README\.md\)|\(docs\/\)/);
  });

  it('links only to files and headings that exist (README, CONTRIBUTING, CHANGELOG and every page of docs/)', () => {
    const pages = ['README.md', 'CONTRIBUTING.md', 'CHANGELOG.md'];
    const walk = (d: string): void => {
      for (const e of readdirSync(join(ROOT, d), { withFileTypes: true }))
        if (e.isDirectory()) walk(join(d, e.name));
        else if (e.name.endsWith('.md')) pages.push(join(d, e.name));
    };
    walk('docs');
    /** The anchors a forge gives a page: its headings' slugs (GitHub's rule) and explicit ids. */
    const anchors = (file: string): Set<string> => {
      const out = new Set<string>();
      const seen = new Map<string, number>();
      const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/^#{1,6} (.+)$/gm)) {
        const base = m[1]
          .toLowerCase()
          .replace(/[^\p{L}\p{N}\s_-]/gu, '')
          .replace(/\s/g, '-');
        const n = seen.get(base) ?? 0;
        seen.set(base, n + 1);
        out.add(n ? `${base}-${n}` : base);
      }
      for (const m of text.matchAll(/<a id="([^"]+)"><\/a>/g)) out.add(m[1]);
      return out;
    };
    const broken: string[] = [];
    for (const p of pages) {
      const text = readFileSync(join(ROOT, p), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const [target, hash] = m[1].split('#');
        if (/^[a-z]+:/.test(m[1])) continue;
        const file = target ? resolve(dirname(join(ROOT, p)), target) : join(ROOT, p);
        if (!existsSync(file)) broken.push(`${p} → ${m[1]}`);
        else if (hash && file.endsWith('.md') && !anchors(file).has(hash))
          broken.push(`${p} → ${m[1]} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});
