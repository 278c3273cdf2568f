/**
 * Document parameters and secrets from outside the document.
 *
 *   params:                                   # or `parameters:`
 *     admin_address: { type: string, description: the admin workstation }   # required (no default)
 *     uplink: { type: string, default: eth0 }
 *     vnc_first: { type: integer, default: 5900 }
 *     db_password: { type: string, secret: true, from_file: /etc/opd/secrets/ravada-db }
 *   plugins:
 *     firewall: … "ip saddr ${param.admin_address} tcp dport 5900-7000 accept"
 *     databases: { mysql_users: { rvd_user@localhost: { password: "${param.db_password}" } } }
 *     users: { users: { "${param.operator}": { groups: [libvirt, kvm] } } }
 *     files: { paths: { /etc/x.env: { content: { from_file: /etc/opd/secrets/x.env } } } }
 *
 * Values, first found wins: `--var name=value` (repeatable), `--vars FILE` (a YAML/JSON map),
 * the environment (`OPD_VAR_<name>`), the host's vars file (/etc/opd/vars.yaml when it exists;
 * OPD_VARS_FILE), then the declaration (`default`, or for a secret the file named by
 * `from_file`). `${fact.NAME}` is the host's fact NAME (src/core/facts.ts), substituted the same
 * way; an unknown fact is a problem like an unknown parameter. `${param.NAME}` is replaced in every string value and key under
 * `plugins:`; a value that is exactly `${param.NAME}` takes the parameter's type (an integer
 * stays an integer). `$${param.` writes a literal `${param.`. Other `${…}` text (systemd, shell)
 * is left as it is. `{ from_file: PATH }` in place of a value is replaced by that file's text
 * (without its final newline) and is a secret (`{ from_file: PATH, secret: false }`: not one).
 *
 * Secrets by construction: a parameter that reads `from_file` is secret unless it says
 * `secret: false`. Secret values (secret parameters, from_file texts) are registered with the
 * redaction layer (src/core/secrets.ts): they never reach output, logs or the audit trail,
 * wherever they were substituted (every line of them, and every 8 characters in a row of a
 * line). A secret given with `--var` is on the command line, which every local user can read in
 * /proc/PID/cmdline: it is accepted with a warning that points to `--vars FILE` and OPD_VAR_*.
 * Problems (an unset required parameter, a value of the wrong type, an unknown parameter, an
 * unreadable secret file) are all reported at once, exit 65, with file:line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { yamlPackage } from './lazy-yaml.js';
import { OpdError, invalidDocument, type Problem } from './errors.js';
import { pathToPointer, type LoadedDocument } from './document.js';
import { registerSecretValues } from './secrets.js';
import { readNamedFile } from './fsutil.js';
import { isObj } from './diff.js';
import { factHint, isFactName, readHostFacts, type HostFacts } from './facts.js';

export const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const PARAM_TYPES = ['string', 'integer', 'number', 'boolean'] as const;
const REF = /(\$?)\$\{(param|fact)\.([^}]*)\}/g;
const WHOLE = /^\$\{(param|fact)\.([A-Za-z_][A-Za-z0-9_]*)\}$/;
/** Whether a string may hold a reference (the fast path skips the rest). */
const hasRef = (s: string) => s.includes('${param.') || s.includes('${fact.');

/** Where parameter values come from besides the document (CLI flags, environment). */
export interface VarSources {
  /** `--var name=value`, in order (a later one wins). */
  vars?: string[];
  /** `--vars FILE` (YAML or JSON maps; a later file wins). */
  varsFiles?: string[];
  /** Environment (OPD_VAR_<name>); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * The host's vars file (DEFAULT_VARS_FILE, or OPD_VARS_FILE; '' for none): read after the
   * environment when it exists, by the CLI, the daemon and the boot unit alike. Names the
   * document does not declare are ignored (one file serves every document of the host).
   */
  defaultVarsFile?: string;
}

/** The host's vars file, read when it exists (OPD_VARS_FILE moves it; an empty value turns it off). */
export const DEFAULT_VARS_FILE = '/etc/opd/vars.yaml';

type Obj = Record<string, unknown>;

interface Decl {
  name: string;
  type: (typeof PARAM_TYPES)[number];
  default?: unknown;
  secret: boolean;
  fromFile?: string;
  enum?: unknown[];
}

/** Parse `--var name=value` strings; usage errors for malformed ones. */
export function parseVarFlags(vars: string[] = []): Map<string, string> {
  const m = new Map<string, string>();
  for (const v of vars) {
    const i = v.indexOf('=');
    const name = i > 0 ? v.slice(0, i) : '';
    if (!PARAM_NAME.test(name))
      throw new OpdError(
        'usage',
        `--var ${JSON.stringify(v)}: expected name=value with a name of letters, digits and _`,
        { hint: 'e.g. --var admin_address=10.1.2.3' },
      );
    m.set(name, v.slice(i + 1));
  }
  return m;
}

function readVarsFile(file: string, optional = false): Obj {
  if (optional && !existsSync(file)) return {};
  const what = optional ? `the vars file ${file}` : `--vars ${file}`;
  const text = readNamedFile(file, what, 'give a YAML or JSON file mapping parameter names to values');
  let v: unknown;
  try {
    v = yamlPackage().parse(text);
  } catch (err) {
    throw new OpdError('usage', `${what}: not YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (v === null || v === undefined) return {};
  if (!isObj(v)) throw new OpdError('usage', `${what}: expected a map of parameter names to values`);
  return v;
}

function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}

/** Coerce a value given as text (flags, environment) or typed (vars file, default) to the declared type. */
function coerce(d: Decl, v: unknown): { ok: true; value: unknown } | { ok: false; why: string } {
  const bad = (why: string) => ({ ok: false as const, why });
  let out: unknown = v;
  switch (d.type) {
    case 'string':
      if (typeof v === 'number' || typeof v === 'boolean') out = String(v);
      else if (typeof v !== 'string') return bad(`expected a string, got ${JSON.stringify(v)}`);
      break;
    case 'integer':
      if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) out = Number(v.trim());
      if (typeof out !== 'number' || !Number.isSafeInteger(out))
        return bad(`expected an integer, got ${d.secret ? '<secret>' : JSON.stringify(v)}`);
      break;
    case 'number':
      if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) out = Number(v);
      if (typeof out !== 'number' || !Number.isFinite(out))
        return bad(`expected a number, got ${d.secret ? '<secret>' : JSON.stringify(v)}`);
      break;
    case 'boolean':
      if (typeof v === 'string') {
        const s = v.trim().toLowerCase();
        if (['true', 'yes', 'on', '1'].includes(s)) out = true;
        else if (['false', 'no', 'off', '0'].includes(s)) out = false;
      }
      if (typeof out !== 'boolean')
        return bad(`expected true or false, got ${d.secret ? '<secret>' : JSON.stringify(v)}`);
      break;
  }
  if (d.enum && !d.enum.some((e) => e === out))
    return bad(
      `expected one of ${d.enum.map((e) => JSON.stringify(e)).join(', ')}, got ${d.secret ? '<secret>' : JSON.stringify(out)}`,
    );
  return { ok: true, value: out };
}

/**
 * Resolve the document's parameters and `from_file` values: returns a copy of `loaded` whose
 * `raw` has every reference substituted. Throws OpdError('invalid-document') with all problems.
 */
export function resolveParams(loaded: LoadedDocument, src: VarSources = {}, hostFacts?: HostFacts): LoadedDocument {
  const raw = loaded.raw;
  let facts = hostFacts;
  const fact = (name: string) => (facts ??= readHostFacts()).values[name as keyof HostFacts['values']];
  if (!isObj(raw)) return loaded;
  const problems: Problem[] = [];
  const at = (pointer: string, message: string, fix?: string, atKey = false) => {
    const pos = loaded.locate(pointer, atKey);
    problems.push({ file: loaded.file, line: pos?.line, col: pos?.col, pointer, message, fix });
  };
  const blockKey = 'params' in raw ? 'params' : 'parameters' in raw ? 'parameters' : undefined;
  if ('params' in raw && 'parameters' in raw)
    at('/parameters', 'both `params` and `parameters`', 'keep one of them (they are the same block)', true);
  const block = blockKey ? raw[blockKey] : undefined;

  const decls = new Map<string, Decl>();
  if (isObj(block)) {
    for (const [name, spec] of Object.entries(block)) {
      // the schema reports malformed declarations; here only what it cannot say
      if (!PARAM_NAME.test(name) || !isObj(spec)) continue;
      const type = (PARAM_TYPES as readonly string[]).includes(spec.type as string)
        ? (spec.type as Decl['type'])
        : 'string';
      const fromFile = typeof spec.from_file === 'string' ? spec.from_file : undefined;
      const d: Decl = {
        name,
        type,
        // from_file is for secrets: secret unless the declaration says `secret: false`
        secret: spec.secret === true || (fromFile !== undefined && spec.secret !== false),
        default: spec.default,
        fromFile,
        enum: Array.isArray(spec.enum) ? spec.enum : undefined,
      };
      if (d.secret && 'default' in spec)
        at(
          `/${blockKey}/${name}/default`,
          `secret parameter "${name}" has an inline default: the document would hold the secret`,
          `remove the default; give the value with from_file: /etc/opd/secrets/${name}, --var, --vars or OPD_VAR_${name}`,
          true,
        );
      decls.set(name, d);
    }
  }

  // values from outside, first found wins: --var, --vars (last file first), environment
  const flags = parseVarFlags(src.vars);
  const files = (src.varsFiles ?? []).map((f) => readVarsFile(f)).reverse();
  const env = src.env ?? process.env;
  const hostFile = src.defaultVarsFile ? readVarsFile(src.defaultVarsFile, true) : {};
  const given = (name: string): { value: unknown; from: string } | undefined => {
    if (flags.has(name)) return { value: flags.get(name), from: `--var ${name}` };
    for (let i = 0; i < files.length; i++)
      if (name in files[i]) return { value: files[i][name], from: `--vars ${src.varsFiles![files.length - 1 - i]}` };
    const e = env[`OPD_VAR_${name}`];
    if (e !== undefined) return { value: e, from: `OPD_VAR_${name}` };
    if (name in hostFile) return { value: hostFile[name], from: src.defaultVarsFile! };
    return undefined;
  };
  for (const name of flags.keys())
    if (!decls.has(name))
      throw new OpdError('usage', `--var ${name}: ${loaded.file} declares no parameter "${name}"`, {
        hint: decls.size
          ? `declared: ${[...decls.keys()].sort().join(', ')}`
          : `declare it under params: in the document`,
      });

  const values = new Map<string, unknown>();
  const secrets: string[] = [];
  const warnings: Problem[] = [];
  for (const d of [...decls.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const ptr = `/${blockKey}/${d.name}`;
    const g = given(d.name);
    let v: unknown;
    let from: string;
    if (g) {
      v = g.value;
      from = g.from;
    } else if (d.fromFile) {
      try {
        v = readSecretFile(d.fromFile);
      } catch (err) {
        at(
          ptr,
          `parameter "${d.name}" is not set: cannot read ${d.fromFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
          `create ${d.fromFile} (mode 0600), or give --var ${d.name}=…, --vars FILE or OPD_VAR_${d.name}`,
          true,
        );
        continue;
      }
      from = d.fromFile;
    } else if (d.default !== undefined && !d.secret) {
      v = d.default;
      from = 'its default';
    } else {
      at(
        ptr,
        `required parameter "${d.name}" is not set`,
        `give --var ${d.name}=…, --vars FILE, OPD_VAR_${d.name} or ${d.name}: in ${src.defaultVarsFile || DEFAULT_VARS_FILE}${d.secret ? `, or from_file: /etc/opd/secrets/${d.name}` : ', or a default'}`,
        true,
      );
      continue;
    }
    const c = coerce(d, v);
    if (!c.ok) {
      at(
        ptr,
        `parameter "${d.name}" (from ${from}): ${c.why}`,
        `give ${d.type === 'integer' ? 'an' : 'a'} ${d.type}`,
        true,
      );
      continue;
    }
    values.set(d.name, c.value);
    if (d.secret) secrets.push(String(c.value));
    if (d.secret && from.startsWith('--var ')) {
      const pos = loaded.locate(ptr, true);
      warnings.push({
        file: loaded.file,
        line: pos?.line,
        col: pos?.col,
        pointer: ptr,
        message: `secret parameter "${d.name}" was given with --var: a value on the command line is visible to every local user (/proc/PID/cmdline) and in shell history`,
        fix: `give it with --vars FILE (a 0600 file mapping ${d.name} to its value), OPD_VAR_${d.name}, or from_file: /etc/opd/secrets/${d.name}`,
      });
    }
  }

  // substitute under plugins: (string values and keys), and replace { from_file } values
  const unknownFact = (ptr: string, name: string, m: string) =>
    at(
      ptr,
      `unknown fact ${JSON.stringify(name)}${m ? ` in ${JSON.stringify(m)}` : ''}`,
      PARAM_NAME.test(name) ? factHint(name) : 'write ${fact.NAME} with a name of letters, digits and _',
    );
  const subst = (s: string, ptr: string): unknown => {
    const whole = WHOLE.exec(s);
    if (whole) {
      const [, kind, name] = whole;
      if (kind === 'fact') {
        if (isFactName(name)) return fact(name);
        unknownFact(ptr, name, '');
        return s;
      }
      if (values.has(name)) return values.get(name);
      if (!decls.has(name))
        at(
          ptr,
          `unknown parameter "${name}"`,
          decls.size ? `declared: ${[...decls.keys()].sort().join(', ')}` : 'declare it under params:',
        );
      return s;
    }
    if (!hasRef(s)) return s;
    return s.replace(REF, (m, esc: string, kind: string, name: string) => {
      if (esc) return m.slice(1);
      if (kind === 'fact') {
        if (isFactName(name)) return String(fact(name));
        unknownFact(ptr, name, m);
        return m;
      }
      if (values.has(name)) return String(values.get(name));
      if (!decls.has(name))
        at(
          ptr,
          `unknown parameter ${JSON.stringify(name)} in ${JSON.stringify(m)}`,
          PARAM_NAME.test(name)
            ? decls.size
              ? `declared: ${[...decls.keys()].sort().join(', ')}`
              : 'declare it under params:'
            : 'write ${param.NAME} with a name of letters, digits and _',
        );
      return m;
    });
  };
  // copy on write: a value that holds no reference is returned as it is (no copy of a big
  // document); `path` is the pointer of the value being walked, made into text only for a message
  const path: (string | number)[] = ['plugins'];
  const here = (...more: (string | number)[]) => pathToPointer([...path, ...more]);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return hasRef(v) ? subst(v, here()) : v;
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        const w = walk(v[i]);
        path.pop();
        if (w !== v[i]) (out ??= v.slice())[i] = w;
      }
      return out ?? v;
    }
    if (!isObj(v)) return v;
    const keys = Object.keys(v);
    if (
      typeof v.from_file === 'string' &&
      keys.every((k) => k === 'from_file' || k === 'secret') &&
      (v.secret === undefined || typeof v.secret === 'boolean')
    ) {
      const f = subst(v.from_file, here('from_file'));
      try {
        const text = readSecretFile(String(f));
        // a file's text is secret unless the value says `secret: false`
        if (v.secret !== false) secrets.push(text);
        return text;
      } catch (err) {
        at(
          here(),
          `cannot read the secret file ${f} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
          `create ${f} (mode 0600) holding the value`,
        );
        return v;
      }
    }
    let out: Obj | undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const nk = hasRef(k) ? subst(k, here(k)) : k;
      const key = typeof nk === 'string' ? nk : String(nk);
      if (key !== k) {
        if (key in v || (out && key in out))
          at(
            here(k),
            `key ${JSON.stringify(k)} becomes ${JSON.stringify(key)}, which the document names twice`,
            'name each resource once',
            true,
          );
        loaded.remaps.set(here(key), here(k));
      }
      path.push(key);
      const w = walk(v[k]);
      path.pop();
      if (!out && (key !== k || w !== v[k])) {
        out = {};
        for (let j = 0; j < i; j++) out[keys[j]] = v[keys[j]];
      }
      if (out) out[key] = w;
    }
    return out ?? v;
  };
  const resolved: Obj = { ...raw };
  if (raw.plugins !== undefined) resolved.plugins = walk(raw.plugins);
  // registered before any problem is reported: a message may quote a value that holds one
  registerSecretValues(secrets);
  if (problems.length) {
    const onlyFacts = problems.every((p) => p.message.startsWith('unknown fact'));
    throw invalidDocument(loaded.file, problems, {
      what: onlyFacts ? 'with host facts' : 'with parameters',
      hint: onlyFacts
        ? '`opd facts` lists the facts a document can use'
        : 'set every required parameter (--var name=value, --vars FILE, OPD_VAR_name) and run again',
    });
  }
  const out: LoadedDocument = { ...loaded, raw: resolved };
  resolvedInfo.set(out, { secrets, warnings, values: Object.fromEntries(values) });
  return out;
}

interface ParamsInfo {
  secrets: readonly string[];
  warnings: readonly Problem[];
  /** every declared parameter's value, by name */
  values: Readonly<Record<string, unknown>>;
}
const resolvedInfo = new WeakMap<LoadedDocument, ParamsInfo>();

/**
 * What resolveParams learnt about a document it resolved: its secret values (parameters and
 * from_file texts), its warnings (a secret given with --var), located, and its parameters' values.
 */
export function paramsInfo(loaded: LoadedDocument): ParamsInfo {
  return resolvedInfo.get(loaded) ?? { secrets: [], warnings: [], values: {} };
}
