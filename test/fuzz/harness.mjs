// The fuzz harness of issue 22: property-based documents, parameters and hostile names through
// opd's validate path (load, parameters, normalize, validate, semantic checks: prepareLoaded, in
// process) and the planner (diff and plan against an empty or generated current state, pure),
// then the output path (redaction, plan JSON, plan lines). Documents are derived from the
// plugins' own schemas (schema/*.schema.json): one converter from JSON Schema to fast-check
// arbitraries, no generator written per plugin, so a new plugin or field is fuzzed as it lands.
//
// A case fails when anything but an OpdError escapes, when the OpdError is a `bug` or has no
// message, when a message carries a stack trace, when a located kind of problem has no line, or
// when the case takes more than MAX_CASE_MS of CPU time. Used by test/unit/fuzz.test.ts (2,000 cases, in
// `npm test`) and bench/suites/fuzz.mjs (100,000 cases, `npm run bench -- fuzz`). The modules of
// opd are passed in (src/ for the unit test, dist/ for the benchmark), so this file imports none.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const MAX_CASE_MS = 1000;

/** Strings an attacker or a careless hand puts where names and values go. */
export const HOSTILE = [
  'br0;rm -rf /',
  '$(reboot)',
  '`id`',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '-x',
  '--help',
  '-rf',
  '../../etc/passwd',
  '/etc/../../root',
  '..',
  '.',
  '',
  ' ',
  'a b',
  'a\nb',
  'a\u0000b',
  'a\r\nb',
  'a|b',
  "a'b",
  'a"b',
  'a\\b',
  '*',
  '%s',
  '%n%n%n',
  '${param.x}',
  '$${param.x}',
  '${param.__proto__}',
  '${param.}',
  '${param.a',
  '${HOME}',
  'bré',
  '\u202eevil',
  '😀🔥',
  'Ω≈ç√∫',
  '\uFEFFbom',
  '\uD800',
  'ｂｒ０',
  'x'.repeat(300),
  '0',
  '-1',
  '1e309',
  'NaN',
  'true',
  'null',
  '~',
  '<<',
  '*anchor',
  '&anchor x',
  '!!binary aGVsbG8=',
  '{a: 1}',
  '[1, 2',
  '#comment',
  '---',
];

const TYPES = ['string', 'integer', 'number', 'boolean'];

/**
 * Names that JavaScript objects treat specially, or that look like options or paths: drawn even
 * in clean documents wherever the schema's pattern accepts them (a map keyed by `toString` must
 * stay a map entry, a name `-x` must never become an option). `__proto__`, `constructor` and
 * `prototype` are refused as names at validate (test/unit/core/deps.test.ts): they come with
 * the HOSTILE strings, so that clean documents still reach the planner.
 */
export const TRICKY = [
  'toString',
  'hasOwnProperty',
  'valueOf',
  '__defineGetter__',
  'then',
  'length',
  '0',
  '00',
  '-x',
  '--',
  'a..b',
  '..',
  '.',
  '_',
  'NaN',
  'null',
  'x'.repeat(63),
  'x'.repeat(64),
  'x'.repeat(255),
];

/** The schema files by name, and the plugins the envelope names (with a schema file of their own). */
export function loadSchemas(schemaDir) {
  const files = new Map();
  for (const f of readdirSync(schemaDir).sort())
    if (f.endsWith('.schema.json')) files.set(f, JSON.parse(readFileSync(join(schemaDir, f), 'utf8')));
  const state = files.get('state.schema.json');
  const plugins = Object.entries(state.properties.plugins.properties)
    .filter(([, v]) => v && typeof v === 'object' && typeof v.$ref === 'string' && files.has(v.$ref))
    .map(([name, v]) => [name, v.$ref]);
  return { files, plugins };
}

/** Secret files for `from_file`: one line, several lines, empty, and paths that do not exist. */
export function secretFiles() {
  const dir = mkdtempSync(join(tmpdir(), 'opd-fuzz-'));
  const files = {
    one: 'Fuzz-Secret-0ne-Line-77',
    multi: '-----BEGIN FUZZ KEY-----\nline-2-of-the-fuzz-key-Qq9\nline-3 with spaces\n-----END FUZZ KEY-----',
    empty: '',
    json: '{"a": [1, 2, {"b": null}]}',
  };
  const paths = [];
  for (const [n, text] of Object.entries(files)) {
    const p = join(dir, n);
    writeFileSync(p, text + '\n', { mode: 0o600 });
    paths.push(p);
  }
  mkdirSync(join(dir, 'a-directory'));
  paths.push(join(dir, 'a-directory'), join(dir, 'missing'), '/nonexistent/opd-fuzz', 'relative/path');
  return { dir, paths };
}

/**
 * JSON Schema (2020-12, the subset opd's schemas use) → fast-check arbitrary. `hostile` (0..1)
 * is the weight of hostile strings and keys against schema-conforming ones; 0 gives state as a
 * plugin's read would (the generated current state).
 */
export function schemaArbitraries(fc, files, { hostile = 0.15, maxDepth = 6 } = {}) {
  const hostileString = fc.oneof(
    { arbitrary: fc.constantFrom(...HOSTILE), weight: 20 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 8 },
    { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }), weight: 4 },
    // huge: past the schemas' maxLength, and past what a name may be anywhere
    { arbitrary: fc.constantFrom('y'.repeat(70_000), 'z'.repeat(5_000)), weight: 1 },
  );
  const hostileValue = fc.oneof(
    { arbitrary: hostileString, weight: 6 },
    { arbitrary: fc.constantFrom(null, true, false, 0, -1, 2 ** 53, 1.5, -0), weight: 2 },
    { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 2 },
    { arbitrary: fc.integer({ min: 20, max: 400 }).map(deep), weight: 1 },
  );
  const pct = (p) => Math.max(0, Math.round(p * 100));
  const mix = (arb, bad) =>
    hostile > 0
      ? fc.oneof({ arbitrary: arb, weight: pct(1 - hostile) }, { arbitrary: bad, weight: pct(hostile) })
      : arb;

  const resolve = (node, file) => {
    let cur = node;
    let f = file;
    for (let i = 0; i < 16 && cur && typeof cur === 'object' && typeof cur.$ref === 'string'; i++) {
      const [doc, frag] = cur.$ref.split('#');
      if (doc) f = doc;
      let base = files.get(f);
      for (const seg of (frag ?? '').split('/').filter(Boolean)) base = base?.[seg];
      cur = base;
    }
    return [cur, f];
  };

  const regexes = new Map();
  const regexArb = (pattern, fallback) => {
    let arb = regexes.get(pattern);
    if (arb) return arb;
    arb = drawnBy(pattern, fallback);
    let tricky = [];
    try {
      const re = new RegExp(pattern, 'u');
      tricky = TRICKY.filter((t) => re.test(t));
    } catch {
      /* a pattern JavaScript cannot compile with u: no tricky names for it */
    }
    if (tricky.length)
      arb = fc.oneof({ arbitrary: arb, weight: 6 }, { arbitrary: fc.constantFrom(...tricky), weight: 1 });
    regexes.set(pattern, arb);
    return arb;
  };
  const drawnBy = (pattern, fallback) => {
    let arb;
    // fast-check draws a negated class ([^…]) by rejection, which is slow: "anything but these"
    // becomes a few safe characters; lookarounds (which it cannot draw) are left out
    const simple = stripLookarounds(pattern).replace(/\[\^(?:\\.|[^\]\\])*\]/g, '[a-z0-9]');
    try {
      arb = fc.stringMatching(new RegExp(simple, 'u'));
    } catch {
      try {
        arb = fc.stringMatching(new RegExp(simple));
      } catch {
        arb = fallback;
      }
    }
    return arb;
  };

  const stringArb = (s) => {
    const max = typeof s.maxLength === 'number' ? Math.min(s.maxLength, 64) : 24;
    const min = typeof s.minLength === 'number' ? Math.min(s.minLength, max) : 0;
    const plain = fc.string({ minLength: min, maxLength: max });
    let arb = typeof s.pattern === 'string' ? regexArb(s.pattern, plain) : plain;
    if (typeof s.pattern === 'string' && typeof s.maxLength === 'number') arb = arb.map((x) => x.slice(0, s.maxLength));
    return mix(arb, hostileString);
  };

  const keyArb = (s, file) => {
    const [pn] = resolve(s.propertyNames, file);
    let arb;
    if (pn && typeof pn === 'object' && typeof pn.pattern === 'string')
      arb = regexArb(pn.pattern, fc.string({ minLength: 1, maxLength: 12 }));
    else if (s.patternProperties) {
      const pats = Object.keys(s.patternProperties);
      arb = fc.oneof(...pats.map((p) => regexArb(p, fc.string({ minLength: 1, maxLength: 12 }))));
    } else arb = fc.string({ minLength: 1, maxLength: 12 });
    if (pn && typeof pn.maxLength === 'number') arb = arb.map((k) => k.slice(0, pn.maxLength) || 'k');
    return mix(arb, hostileString);
  };

  const memo = new Map();
  const arbOf = (node, file, depth) => {
    if (node === true || node === undefined) return fc.jsonValue({ maxDepth: 2 });
    if (node === false) return fc.constant(null);
    const [s, f] = resolve(node, file);
    if (!s || typeof s !== 'object') return fc.jsonValue({ maxDepth: 2 });
    const key = depth;
    let byDepth = memo.get(s);
    if (!byDepth) memo.set(s, (byDepth = new Map()));
    const hit = byDepth.get(key);
    if (hit) return hit;
    const arb = mix(build(s, f, depth), hostileValue);
    byDepth.set(key, arb);
    return arb;
  };

  const build = (s, f, depth) => {
    if (s.const !== undefined) return fc.constant(s.const);
    if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum);
    const branches = [...(s.oneOf ?? []), ...(s.anyOf ?? [])];
    const hasShape = s.type !== undefined || s.properties || s.additionalProperties || s.patternProperties || s.items;
    if (!hasShape && branches.length) return fc.oneof(...branches.map((b) => arbOf(b, f, depth)));
    // if/then/else (a `when:` fact: one value, or a list of them): either branch
    if (!hasShape && s.if && (s.then || s.else))
      return fc.oneof(...[s.then, s.else].filter(Boolean).map((b) => arbOf(b, f, depth)));
    if (!hasShape && Array.isArray(s.allOf) && s.allOf.length) return arbOf(s.allOf[0], f, depth);
    const types = Array.isArray(s.type)
      ? s.type
      : s.type
        ? [s.type]
        : s.properties || s.additionalProperties || s.patternProperties
          ? ['object']
          : s.items
            ? ['array']
            : ['string'];
    return fc.oneof(...types.map((t) => typed(t, s, f, depth)));
  };

  const typed = (t, s, f, depth) => {
    switch (t) {
      case 'string':
        return stringArb(s);
      case 'integer': {
        const min = typeof s.minimum === 'number' ? s.minimum : -1000;
        const max = typeof s.maximum === 'number' ? s.maximum : Math.max(min, 100000);
        return fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31) });
      }
      case 'number':
        return fc.double({
          noNaN: true,
          noDefaultInfinity: true,
          min: typeof s.minimum === 'number' ? s.minimum : -1e6,
          max: typeof s.maximum === 'number' ? s.maximum : 1e6,
        });
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      case 'array': {
        if (depth >= maxDepth) return fc.constant([]);
        const item =
          s.items && typeof s.items === 'object' ? arbOf(s.items, f, depth + 1) : fc.jsonValue({ maxDepth: 1 });
        const maxLength = Math.min(typeof s.maxItems === 'number' ? s.maxItems : 3, 3);
        const minLength = Math.min(typeof s.minItems === 'number' ? s.minItems : 0, maxLength);
        return fc.array(item, { minLength, maxLength });
      }
      case 'object':
        return objectArb(s, f, depth);
      default:
        return fc.jsonValue({ maxDepth: 1 });
    }
  };

  const objectArb = (s, f, depth) => {
    if (depth >= maxDepth) return fc.constant({});
    const props = s.properties ?? {};
    // a clean document leaves out the keys a schema refuses by name (`not: {}`: op-dbus fields)
    const names = Object.keys(props).filter(
      (n) => hostile > 0 || !(props[n] && typeof props[n] === 'object' && 'not' in props[n]),
    );
    const model = Object.fromEntries(names.map((n) => [n, arbOf(props[n], f, depth + 1)]));
    // anyOf/oneOf/allOf branches that say which keys are required: pick one of each
    const groups = ['oneOf', 'anyOf', 'allOf']
      .flatMap((k) => (Array.isArray(s[k]) ? [s[k]] : []))
      .map((bs) => bs.map((b) => resolve(b, f)[0]).map((b) => (b && Array.isArray(b.required) ? b.required : [])));
    const picks = groups.length ? fc.tuple(...groups.map((g) => fc.constantFrom(...g))) : fc.constant([]);
    const extraValue =
      s.additionalProperties && typeof s.additionalProperties === 'object'
        ? arbOf(s.additionalProperties, f, depth + 1)
        : s.patternProperties
          ? fc.oneof(...Object.values(s.patternProperties).map((v) => arbOf(v, f, depth + 1)))
          : undefined;
    const extra = extraValue
      ? fc.dictionary(keyArb(s, f), extraValue, { maxKeys: 2 })
      : hostile > 0
        ? fc.oneof(
            { arbitrary: fc.constant({}), weight: 9 },
            { arbitrary: fc.dictionary(hostileString, hostileValue, { maxKeys: 1 }), weight: 1 },
          )
        : fc.constant({});
    return picks.chain((pk) => {
      const required = new Set([...(Array.isArray(s.required) ? s.required : []), ...pk.flat()]);
      const rec = fc.record(model, { requiredKeys: names.filter((n) => required.has(n)) });
      return fc.tuple(rec, extra).map(([a, b]) => {
        const out = {};
        // own properties, never the prototype: "__proto__" is a key like any other here
        for (const [k, v] of Object.entries(b))
          Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        for (const [k, v] of Object.entries(a)) out[k] = v;
        return out;
      });
    });
  };

  return { arbOf, hostileString, hostileValue };
}

/** A pattern without its lookaheads and lookbehinds ((?=…), (?!…), (?<=…), (?<!…)). */
function stripLookarounds(p) {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\') {
      out += p.slice(i, i + 2);
      i++;
      continue;
    }
    if (p.startsWith('(?=', i) || p.startsWith('(?!', i) || p.startsWith('(?<=', i) || p.startsWith('(?<!', i)) {
      let depth = 0;
      for (; i < p.length; i++) {
        if (p[i] === '\\') i++;
        else if (p[i] === '(') depth++;
        else if (p[i] === ')' && --depth === 0) break;
      }
      continue;
    }
    out += p[i];
  }
  return out;
}

/** Two states mixed: shared keys mixed again, others kept (each with a chance), leaves from either. */
function mixState(a, b, rnd) {
  const plain = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!plain(a) || !plain(b)) return rnd() < 0.5 ? a : b;
  const out = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const inA = Object.hasOwn(a, k);
    const inB = Object.hasOwn(b, k);
    let v;
    if (inA && inB) v = mixState(a[k], b[k], rnd);
    else if (rnd() < 0.75) v = inA ? a[k] : b[k];
    else continue;
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Arrays in arrays, n deep. */
function deep(n) {
  let v = 'bottom';
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { d: v };
  return v;
}

/** Put `${param.NAME}` references (and hostile ones) into some strings of a value. */
function sprinkle(v, refs, rnd) {
  if (typeof v === 'string') {
    const r = rnd();
    if (r < 0.04 && refs.length) return refs[Math.floor(rnd() * refs.length)];
    if (r < 0.06 && refs.length) return `${v} ${refs[Math.floor(rnd() * refs.length)]}`;
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => sprinkle(x, refs, rnd));
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v))
      Object.defineProperty(out, k, {
        value: sprinkle(x, refs, rnd),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    return out;
  }
  return v;
}

/** The case arbitrary: a document (as YAML or JSON text), its parameters' values, a current state. */
export function caseArbitrary(fc, schemas, secretPaths) {
  const { files, plugins } = schemas;
  // a section is clean (schema-conforming, so that the planner is reached) or hostile
  const doc = schemaArbitraries(fc, files, { hostile: 0.08 });
  const clean = schemaArbitraries(fc, files, { hostile: 0 });
  const cur = schemaArbitraries(fc, files, { hostile: 0, maxDepth: 6 });
  const sectionOf = new Map(
    plugins.map(([name, file]) => [
      name,
      fc.oneof(
        { arbitrary: clean.arbOf(files.get(file), file, 0), weight: 3 },
        { arbitrary: doc.arbOf(files.get(file), file, 0), weight: 1 },
      ),
    ]),
  );
  const currentOf = new Map(plugins.map(([name, file]) => [name, cur.arbOf(files.get(file), file, 0)]));
  const names = plugins.map(([n]) => n);

  const paramName = fc.oneof(
    { arbitrary: fc.constantFrom('pw', 'addr', 'port', 'flag', 'name', 'key'), weight: 6 },
    { arbitrary: doc.hostileString, weight: 1 },
  );
  // each optional member present one time in four
  const sometimes = (arb) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: arb, weight: 1 });
  const paramDecl = fc
    .record({
      type: fc.oneof({ arbitrary: fc.constantFrom(...TYPES), weight: 9 }, { arbitrary: doc.hostileValue, weight: 1 }),
      default: sometimes(fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), doc.hostileValue)),
      secret: sometimes(fc.oneof(fc.boolean(), doc.hostileValue)),
      from_file: sometimes(
        fc.oneof(
          { arbitrary: fc.constantFrom(...secretPaths), weight: 4 },
          { arbitrary: doc.hostileString, weight: 1 },
        ),
      ),
      enum: sometimes(
        fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: 0, max: 9 })), { maxLength: 3 }),
      ),
      description: sometimes(fc.string({ maxLength: 20 })),
    })
    .map((d) => Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined)));
  const params = fc.dictionary(paramName, paramDecl, { maxKeys: 4 });
  const varName = (declared) =>
    declared.length
      ? fc.oneof({ arbitrary: fc.constantFrom(...declared), weight: 9 }, { arbitrary: paramName, weight: 1 })
      : paramName;
  const varValue = fc.oneof(
    fc.string({ maxLength: 16 }),
    fc.integer().map(String),
    fc.constantFrom('true', 'no', '1.5', '', '=', 'a=b'),
    doc.hostileString,
  );

  return fc
    .record({
      chosen: fc.shuffledSubarray(names, { minLength: 1, maxLength: 3 }),
      params: fc.option(params, { freq: 2 }),
      format: fc.constantFrom('yaml', 'yaml', 'json'),
      // the current state: nothing, a state of its own, or the document's own sections mixed
      // with one (so that names and fields meet: updates, noops, deletes of what is named)
      current: fc.constantFrom('empty', 'generated', 'mixed', 'mixed'),
      allowDestroy: fc.boolean(),
      seed: fc.integer({ min: 1, max: 2 ** 30 }),
      extra: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 12 },
        { arbitrary: fc.dictionary(doc.hostileString, doc.hostileValue, { maxKeys: 2 }), weight: 1 },
      ),
      envelope: fc.oneof({ arbitrary: fc.constant(undefined), weight: 20 }, { arbitrary: doc.hostileValue, weight: 1 }),
    })
    .chain((c) =>
      fc
        .tuple(
          fc.tuple(...c.chosen.map((n) => sectionOf.get(n))),
          fc.tuple(...c.chosen.map((n) => (c.current === 'empty' ? fc.constant({}) : currentOf.get(n)))),
          fc.array(fc.tuple(varName(Object.keys(c.params ?? {})), varValue), { maxLength: 3 }),
        )
        .map(([sections, current, vars]) => {
          let s = c.seed;
          const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff), s / 0x7fffffff);
          const refs = Object.keys(c.params ?? {}).map((n) => `\${param.${n}}`);
          const pluginsObj = {};
          c.chosen.forEach((n, i) => (pluginsObj[n] = sprinkle(sections[i], refs, rnd)));
          if (c.extra) Object.assign(pluginsObj, c.extra);
          const document = { version: 1, ...(c.params ? { params: c.params } : {}), plugins: pluginsObj };
          const root = c.envelope !== undefined ? c.envelope : document;
          const text = c.format === 'json' ? JSON.stringify(root, null, 1) : stringify(root, { lineWidth: 0 });
          return {
            text,
            format: c.format,
            vars: vars.map(([k, v]) => `${k}=${v}`),
            current: Object.fromEntries(
              c.chosen.map((n, i) => [n, c.current === 'mixed' ? mixState(sections[i], current[i], rnd) : current[i]]),
            ),
            allowDestroy: c.allowDestroy,
          };
        }),
    );
}

const STACK = /\n\s+at .+[:(]\d+/;

/** Why an error that escaped is a failure, or undefined when it is a proper OpdError. */
function judge(deps, err) {
  if (!(err instanceof deps.OpdError))
    return `not an OpdError: ${err?.constructor?.name}: ${String(err?.stack ?? err)}`;
  if (err.kind === 'bug') return `an OpdError of kind bug: ${err.message}`;
  if (!err.kind || typeof err.message !== 'string' || !err.message.trim())
    return 'an OpdError without a kind or message';
  const text = deps.formatError ? deps.formatError(err) : err.message;
  if (STACK.test(text)) return `a stack trace in the message: ${text.slice(0, 400)}`;
  if (err.kind === 'invalid-document')
    for (const p of err.problems ?? [])
      if (typeof p.line !== 'number' || !p.message) return `an unlocated problem: ${JSON.stringify(p).slice(0, 300)}`;
  return undefined;
}

/**
 * Run one case: validate path, then (for a valid document) diff, plan and the output path.
 * Returns its time and, for a failure, why. `deps`: opd's modules (see test/unit/fuzz.test.ts).
 */
export async function runCase(deps, c) {
  deps.clearSecretValues();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let failure;
  let stage = 'validate';
  try {
    const loaded = deps.parseText(Buffer.from(c.text), c.format === 'json' ? 'fuzz.json' : 'fuzz.yaml');
    const prep = await deps.prepareLoaded(loaded, {}, { env: {}, vars: c.vars });
    stage = 'plan';
    const current = {};
    for (const name of prep.plugins.keys()) current[name] = c.current[name] ?? {};
    const diffs = deps.diffAll(prep, current, c.allowDestroy);
    const edges = deps.collectEdges(prep.plugins, prep.doc.plugins);
    const plan = deps.buildPlan(prep.plugins, diffs, edges, deps.refreshes(prep, diffs));
    stage = 'output';
    const shown = deps.redactPlan(plan, prep.redactor);
    JSON.stringify(deps.planJSON(shown));
    for (const ch of shown.changes) deps.formatChange(ch);
    deps.redactPlan(plan, prep.redactor.withKey('fuzz-key'));
    stage = 'done';
  } catch (err) {
    const why = judge(deps, err);
    if (why) failure = `${stage}: ${why}`;
  }
  const wall = performance.now() - t0;
  // the limit is on CPU time (user + system): a loaded machine stretches wall time, not work
  const cpu = process.cpuUsage(cpu0);
  const ms = (cpu.user + cpu.system) / 1000;
  if (!failure && ms > MAX_CASE_MS) failure = `${stage}: took ${Math.round(ms)} ms of CPU (over ${MAX_CASE_MS} ms)`;
  deps.clearSecretValues();
  return { ms, wall, failure, stage };
}

/**
 * `cases` cases from `seed`, each run (no shrinking: every failure is counted): the figures of
 * the benchmark. `onProgress(done)` now and then.
 */
export async function fuzz(deps, fc, schemas, { cases, seed, onProgress = () => {} }) {
  const { paths } = secretFiles();
  const arb = caseArbitrary(fc, schemas, paths);
  // warm-up: validators and plugins load on first use, not inside a timed case
  for (const c of fc.sample(arb, { numRuns: 20, seed: seed + 1 })) await runCase(deps, c);
  const failures = new Map();
  let slowest = { ms: 0 };
  let slowestWall = 0;
  let done = 0;
  let totalMs = 0;
  let planned = 0;
  const batch = 500;
  for (let b = 0; done < cases; b++) {
    const n = Math.min(batch, cases - done);
    for (const c of fc.sample(arb, { numRuns: n, seed: seed + b * 7919 })) {
      const r = await runCase(deps, c);
      totalMs += r.ms;
      if (r.stage === 'done') planned++;
      slowestWall = Math.max(slowestWall, r.wall);
      if (r.ms > slowest.ms)
        slowest = {
          ms: Math.round(r.ms * 10) / 10,
          wall_ms: Math.round(r.wall * 10) / 10,
          stage: r.stage,
          bytes: c.text.length,
          head: c.text.slice(0, 300),
        };
      if (r.failure) {
        const key = r.failure.split('\n')[0].replace(/\d+/g, 'N').slice(0, 160);
        const f = failures.get(key) ?? {
          count: 0,
          example: r.failure.slice(0, 2000),
          text: c.text.slice(0, 4000),
          vars: c.vars,
          current: JSON.stringify(c.current).slice(0, 4000),
        };
        f.count++;
        failures.set(key, f);
      }
    }
    done += n;
    onProgress(done);
  }
  return {
    cases: done,
    planned,
    slowest_wall_ms: Math.round(slowestWall * 10) / 10,
    total_ms: Math.round(totalMs),
    mean_ms: Math.round((totalMs / done) * 100) / 100,
    slowest_ms: Math.round(slowest.ms * 10) / 10,
    slowest_case: slowest,
    failures: [...failures.values()].sort((a, b) => b.count - a.count),
  };
}
