// ESLint rule opd/no-fs-mutation: no node:fs call that changes the host in src/plugins and
// src/host. Every write, remove, rename, chmod, chown, mkdir, link and /proc/sys write goes
// through the host doors of src/core/hostfs.ts, which need the run's ApplyContext (a dry run
// cannot reach them) and resolve the path from --root without following links.
// Caught: importing a mutating function (writeFileSync, rm, …) from fs, node:fs,
// fs/promises or node:fs/promises; calling one through a namespace (fs.rmSync,
// fsp.unlink, fs.promises.rm); open/openSync with flags that write ('w', 'a', '+',
// O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND) or flags it cannot read; and the core's raw
// helpers ensureDir / writeFileAtomic (core/fsutil.ts), which are not doors.

const FS_MODULES = new Set(['fs', 'node:fs', 'fs/promises', 'node:fs/promises']);
// the core's own raw helpers (audit, run state) are not doors: they take no ApplyContext and follow links
const CORE_RAW = /(^|\/)core\/fsutil(\.js)?$/;
const CORE_RAW_NAMES = new Set(['ensureDir', 'writeFileAtomic']);
const BASE = [
  'writeFile',
  'appendFile',
  'unlink',
  'rm',
  'rmdir',
  'rename',
  'chmod',
  'lchmod',
  'fchmod',
  'chown',
  'lchown',
  'fchown',
  'mkdir',
  'mkdtemp',
  'symlink',
  'link',
  'copyFile',
  'cp',
  'truncate',
  'ftruncate',
  'utimes',
  'lutimes',
  'futimes',
  'write',
  'writev',
];
const MUTATING = new Set([...BASE, ...BASE.map((n) => `${n}Sync`), 'createWriteStream']);
const OPENERS = new Set(['open', 'openSync']);
const WRITE_FLAGS = new Set(['O_WRONLY', 'O_RDWR', 'O_CREAT', 'O_TRUNC', 'O_APPEND']);
const WRITE_BITS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000;
const HINT =
  'plugins change host files only through the doors of src/core/hostfs.ts (putFile, removePath, makeDir, setMeta, putSymlink, renamePath, writeKernelFile, withTempFile)';

const propName = (m) =>
  m.computed ? (m.property.type === 'Literal' ? String(m.property.value) : undefined) : m.property.name;

/** Every identifier and member property name in an expression. */
function names(node, out = new Set()) {
  if (!node || typeof node !== 'object') return out;
  if (node.type === 'Identifier') out.add(node.name);
  if (node.type === 'MemberExpression') {
    const p = propName(node);
    if (p) out.add(p);
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === 'parent') continue;
    if (Array.isArray(v)) v.forEach((c) => names(c, out));
    else if (v && typeof v.type === 'string') names(v, out);
  }
  return out;
}

/** Why these open flags write (or cannot be read), or undefined for a read-only open. */
function writingFlags(flags) {
  if (!flags) return undefined;
  if (flags.type === 'Literal' && typeof flags.value === 'string')
    return /[wa+]/.test(flags.value) ? `flags '${flags.value}'` : undefined;
  if (flags.type === 'Literal' && typeof flags.value === 'number')
    return flags.value & WRITE_BITS ? `flags ${flags.value}` : undefined;
  const n = names(flags);
  const w = [...n].filter((x) => WRITE_FLAGS.has(x));
  if (w.length) return w.join('|');
  if (![...n].some((x) => x.startsWith('O_'))) return 'flags it cannot check (give them as literal or O_* constants)';
  return undefined;
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'no node:fs call that changes the host outside the host doors (src/core/hostfs.ts)' },
    schema: [],
    messages: {
      imported: `{{name}} from {{module}} changes the host: ${HINT}.`,
      called: `{{name}} changes the host: ${HINT}.`,
      open: `opening a file with {{why}} changes the host: ${HINT}.`,
    },
  },
  create(context) {
    const fsNs = new Set(); // import * as fs from 'node:fs' (and default imports)
    const promisesNs = new Set(); // fs/promises namespaces, `promises as fsp`
    const openers = new Set();
    const checkOpen = (node) => {
      const why = writingFlags(node.arguments[1]);
      if (why) context.report({ node, messageId: 'open', data: { why } });
    };
    return {
      ImportDeclaration(node) {
        const module = node.source.value;
        if (CORE_RAW.test(module)) {
          for (const s of node.specifiers)
            if (s.type === 'ImportSpecifier' && CORE_RAW_NAMES.has(s.imported.name))
              context.report({ node: s, messageId: 'imported', data: { name: s.imported.name, module } });
          return;
        }
        if (!FS_MODULES.has(module)) return;
        const promisesModule = module.endsWith('/promises');
        for (const s of node.specifiers) {
          if (s.type === 'ImportNamespaceSpecifier' || s.type === 'ImportDefaultSpecifier') {
            (promisesModule ? promisesNs : fsNs).add(s.local.name);
            continue;
          }
          const imported = s.imported.type === 'Identifier' ? s.imported.name : String(s.imported.value);
          if (imported === 'promises') promisesNs.add(s.local.name);
          else if (OPENERS.has(imported)) openers.add(s.local.name);
          else if (MUTATING.has(imported))
            context.report({ node: s, messageId: 'imported', data: { name: imported, module } });
        }
      },
      MemberExpression(node) {
        const p = propName(node);
        if (!p || !MUTATING.has(p)) return;
        const o = node.object;
        const onFs = o.type === 'Identifier' && (fsNs.has(o.name) || promisesNs.has(o.name));
        const onFsPromises =
          o.type === 'MemberExpression' &&
          o.object.type === 'Identifier' &&
          fsNs.has(o.object.name) &&
          propName(o) === 'promises';
        if (onFs || onFsPromises) context.report({ node, messageId: 'called', data: { name: p } });
      },
      CallExpression(node) {
        const c = node.callee;
        if (c.type === 'Identifier' && openers.has(c.name)) return checkOpen(node);
        if (c.type !== 'MemberExpression' || !OPENERS.has(propName(c) ?? '')) return;
        const o = c.object;
        const ns =
          (o.type === 'Identifier' && (fsNs.has(o.name) || promisesNs.has(o.name))) ||
          (o.type === 'MemberExpression' &&
            o.object.type === 'Identifier' &&
            fsNs.has(o.object.name) &&
            propName(o) === 'promises');
        if (ns) checkOpen(node);
      },
    };
  },
};
