/**
 * `opd daemon --config FILE`: a YAML (or JSON) mapping whose keys are the daemon's long option
 * names (`etcd`, `host`, `labels`, `lease-ttl`, `etcd-ca`, `audit-log`, `dbus: false`, …).
 * The command line wins over the environment, which wins over the file, which wins over the
 * defaults. A key that is no option, or a value of the wrong kind, is an error naming
 * file:line:col; nothing starts.
 */
import { readNamedFile } from '../core/fsutil.js';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Node } from 'yaml';
import type { Command, Option } from 'commander';
import { OpdError, type Problem } from '../core/errors.js';

/** Options whose value may also come from the environment: the variable wins over the file. */
const ENV: Record<string, string> = {
  etcd: 'OPD_ETCD',
  host: 'OPD_FLEET_HOST',
  label: 'OPD_FLEET_LABELS',
  'etcd-user': 'OPD_ETCD_USER',
  'etcd-password-file': 'OPD_ETCD_PASSWORD_FILE',
  'etcd-ca': 'OPD_ETCD_CA',
  'etcd-cert': 'OPD_ETCD_CERT',
  'etcd-key': 'OPD_ETCD_KEY',
  'fleet-keys': 'OPD_FLEET_KEYS',
};

/** `labels` is the friendlier plural of the repeatable --label. */
const ALIASES: Record<string, string> = { labels: 'label' };

function optionsOf(cmd: Command): Map<string, { opt: Option; owner: Command }> {
  const out = new Map<string, { opt: Option; owner: Command }>();
  for (let c: Command | null = cmd; c; c = c.parent) {
    for (const opt of c.options) {
      const name = opt.long?.replace(/^--/, '');
      if (name && !['config', 'version', 'help'].includes(name) && !out.has(name)) out.set(name, { opt, owner: c });
    }
  }
  return out;
}

export function applyConfigFile(cmd: Command, file: string): void {
  const text = readNamedFile(file, `cannot read the config file ${file}`, 'give --config a readable YAML file');
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const at = (n: Node | null | undefined) => {
    const p = n?.range ? lc.linePos(n.range[0]) : undefined;
    return { file, line: p?.line, col: p?.col };
  };
  const problems: Problem[] = [];
  const bad = (n: Node | null | undefined, key: string, message: string, fix: string) =>
    problems.push({ ...at(n), pointer: key ? `/${key}` : '', message, fix });
  for (const e of doc.errors) {
    const p = lc.linePos(e.pos[0]);
    problems.push({
      file,
      line: p.line,
      col: p.col,
      pointer: '',
      message: e.message.split('\n')[0],
      fix: 'fix the YAML syntax',
    });
  }
  const root = doc.contents;
  if (!problems.length && !isMap(root))
    bad(
      root as Node,
      '',
      'the config file must be a mapping of option names to values',
      'write e.g. `etcd: https://10.0.0.1:2379`',
    );
  const options = optionsOf(cmd);
  const sets: { owner: Command; attr: string; value: unknown }[] = [];
  if (!problems.length && isMap(root)) {
    for (const pair of root.items) {
      const keyNode = pair.key as Node;
      const raw = isScalar(keyNode) ? String(keyNode.value) : '';
      const name = ALIASES[raw] ?? raw;
      const valueNode = pair.value as Node | null;
      const value: unknown = valueNode && 'toJSON' in valueNode ? (valueNode as { toJSON(): unknown }).toJSON() : null;
      const neg = options.get(`no-${name}`);
      const found = options.get(name) ?? neg;
      if (!found) {
        const known = [...new Set([...options.keys()].map((k) => k.replace(/^no-/, '')))].sort();
        bad(
          keyNode,
          raw,
          `unknown option \`${raw}\``,
          `use one of the daemon's long option names: ${known.join(', ')} (see opd daemon --help)`,
        );
        continue;
      }
      const { opt, owner } = found;
      const attr = opt.attributeName();
      const src = owner.getOptionValueSource(attr);
      if (src === 'cli' || src === 'env' || (ENV[name] && process.env[ENV[name]])) continue; // the command line and environment win
      const takesValue = opt.required || opt.optional;
      if (!takesValue) {
        if (typeof value !== 'boolean') {
          bad(
            valueNode ?? keyNode,
            raw,
            `\`${raw}\` is a switch: its value must be true or false`,
            `write \`${raw}: true\` or \`${raw}: false\``,
          );
          continue;
        }
        // --no-dbus is stored as dbus=false: `dbus: false` and `no-dbus: true` both say it
        sets.push({ owner, attr, value: raw.startsWith('no-') && opt.negate ? !value : value });
        continue;
      }
      const repeatable = name === 'label' || name === 'var';
      if (repeatable) {
        let list: string[] | undefined;
        if (Array.isArray(value) && value.every((v) => typeof v === 'string')) list = value as string[];
        else if (
          value &&
          typeof value === 'object' &&
          !Array.isArray(value) &&
          Object.values(value).every((v) => ['string', 'number', 'boolean'].includes(typeof v))
        )
          list = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${k}=${String(v)}`);
        if (!list) {
          bad(
            valueNode ?? keyNode,
            raw,
            `\`${raw}\` must be a mapping (key: value) or a list of "key=value" strings`,
            `write e.g. \`${raw}: { role: kvm }\``,
          );
          continue;
        }
        sets.push({ owner, attr, value: list });
        continue;
      }
      if (isSeq(valueNode) && name === 'etcd' && Array.isArray(value) && value.every((v) => typeof v === 'string')) {
        sets.push({ owner, attr, value: (value as string[]).join(',') });
        continue;
      }
      if (!['string', 'number'].includes(typeof value)) {
        bad(
          valueNode ?? keyNode,
          raw,
          `\`${raw}\` needs a single value (a string or a number)`,
          `write \`${raw}: VALUE\` as on the command line (--${name} VALUE)`,
        );
        continue;
      }
      sets.push({ owner, attr, value: String(value) });
    }
  }
  if (problems.length) {
    throw new OpdError('usage', `invalid config file ${file}`, {
      problems,
      hint: 'the keys of a config file are the long option names of `opd daemon --help`',
    });
  }
  for (const s of sets) s.owner.setOptionValueWithSource(s.attr, s.value, 'config');
}
