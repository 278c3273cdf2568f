/**
 * A small element tree over fast-xml-parser (preserveOrder), its serializer, and the
 * canonicalization that keeps libvirt's own defaults out of diffs for raw `xml` documents.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface XNode {
  tag: string;
  attrs: Record<string, string>;
  children: XNode[];
  /** text content (trimmed); elements with children and text keep only the text of text-only elements */
  text?: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: '#comment',
  processEntities: true,
  htmlEntities: false,
});

type Raw = Record<string, unknown>;

function convert(raw: Raw): XNode | undefined {
  const tag = Object.keys(raw).find((k) => k !== ':@');
  if (!tag || tag === '#text' || tag === '#comment') return undefined;
  const attrs: Record<string, string> = {};
  const a = raw[':@'] as Record<string, unknown> | undefined;
  if (a) for (const [k, v] of Object.entries(a)) attrs[k] = String(v);
  const kids = (raw[tag] as Raw[]) ?? [];
  const children: XNode[] = [];
  let text: string | undefined;
  for (const k of kids) {
    if ('#text' in k) text = (text ?? '') + String(k['#text']);
    else {
      const c = convert(k);
      if (c) children.push(c);
    }
  }
  const node: XNode = { tag, attrs, children };
  if (text !== undefined && text.trim() !== '') node.text = text.trim();
  return node;
}

/** Parse one XML document into its root element; throws a readable Error when malformed. */
export function parseXml(text: string): XNode {
  const v = XMLValidator.validate(text);
  if (v !== true) throw new Error(`invalid XML at line ${v.err.line}: ${v.err.msg}`);
  const roots = (parser.parse(text) as Raw[]).map(convert).filter((n): n is XNode => !!n);
  if (roots.length !== 1) throw new Error(`expected one root element, found ${roots.length}`);
  return roots[0];
}

const esc = (s: string, attr: boolean) =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(attr ? /'/g : /$^/g, '&apos;');

/** Serialize (libvirt style: single-quoted attributes, two-space indent). */
export function toXml(n: XNode, indent = ''): string {
  const attrs = Object.entries(n.attrs)
    .map(([k, v]) => ` ${k}='${esc(v, true)}'`)
    .join('');
  if (!n.children.length && n.text === undefined) return `${indent}<${n.tag}${attrs}/>\n`;
  if (!n.children.length) return `${indent}<${n.tag}${attrs}>${esc(n.text!, false)}</${n.tag}>\n`;
  return `${indent}<${n.tag}${attrs}>\n${n.children.map((c) => toXml(c, indent + '  ')).join('')}${indent}</${n.tag}>\n`;
}

export function el(
  tag: string,
  attrs: Record<string, string | number | undefined> = {},
  children: (XNode | undefined)[] = [],
  text?: string | number,
): XNode {
  const a: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) a[k] = String(v);
  const n: XNode = { tag, attrs: a, children: children.filter((c): c is XNode => !!c) };
  if (text !== undefined) n.text = String(text);
  return n;
}

export function child(n: XNode | undefined, tag: string): XNode | undefined {
  return n?.children.find((c) => c.tag === tag);
}

export function kids(n: XNode | undefined, tag: string): XNode[] {
  return n ? n.children.filter((c) => c.tag === tag) : [];
}

/** Follow a path of tags: path(dom, 'devices', 'graphics'). */
export function path(n: XNode | undefined, ...tags: string[]): XNode | undefined {
  let cur = n;
  for (const t of tags) cur = child(cur, t);
  return cur;
}

/** Replace (or append) the first child with this tag; undefined removes all of that tag. */
export function setChild(n: XNode, tag: string, c: XNode | undefined): void {
  const i = n.children.findIndex((x) => x.tag === tag);
  if (!c) {
    n.children = n.children.filter((x) => x.tag !== tag);
    return;
  }
  if (i >= 0) n.children[i] = c;
  else n.children.push(c);
}

export function ensureChild(n: XNode, tag: string): XNode {
  let c = child(n, tag);
  if (!c) {
    c = el(tag);
    n.children.push(c);
  }
  return c;
}

const UNIT: Record<string, number> = {
  b: 1,
  bytes: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1e6,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1e9,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1e12,
};

/** A libvirt scaled integer (value + unit attribute) in bytes. Default unit as libvirt's for the element. */
export function scaledBytes(
  value: string | undefined,
  unit: string | undefined,
  defaultUnit = 'b',
): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const u = UNIT[(unit ?? defaultUnit).toLowerCase()];
  if (!u) return undefined;
  return Number(value) * u;
}

/** Elements whose value is a scaled integer (memory elements default to KiB). */
const SCALED: Record<string, string> = {
  memory: 'KiB',
  currentMemory: 'KiB',
  maxMemory: 'KiB',
  capacity: 'b',
  allocation: 'b',
};

/** Elements repeated among siblings that are matched by a key, not by position. */
function keyOf(n: XNode): string | undefined {
  if (n.tag === 'disk') return `disk:${child(n, 'target')?.attrs.dev ?? ''}`;
  if (n.tag === 'controller') return `controller:${n.attrs.type ?? ''}:${n.attrs.index ?? ''}`;
  return undefined;
}

/**
 * Project `live` onto the shape of `doc`: keep only the elements and attributes the document's
 * XML has, so that whatever libvirt adds (uuid, addresses, controllers, aliases, generated MACs,
 * default attributes) is never a difference. Repeated children are matched by key (disks by
 * target dev) or else by their position among siblings of the same tag. Missing pieces stay
 * missing, so they show up as differences.
 */
export function projectXml(live: XNode, doc: XNode): XNode {
  const attrs: Record<string, string> = {};
  const docUnit = doc.tag in SCALED && doc.text !== undefined;
  for (const k of Object.keys(doc.attrs)) {
    if (docUnit && k === 'unit') continue;
    if (k in live.attrs) attrs[k] = live.attrs[k];
  }
  const out: XNode = { tag: live.tag, attrs, children: [] };
  if (docUnit && live.text !== undefined) {
    // compare scaled integers in bytes: write the live value in the document's unit when exact
    const b = scaledBytes(live.text, live.attrs.unit, SCALED[doc.tag]);
    const du = UNIT[(doc.attrs.unit ?? SCALED[doc.tag]).toLowerCase()];
    if (b !== undefined && du && Number.isInteger(b / du)) {
      out.text = String(b / du);
      if ('unit' in doc.attrs) out.attrs.unit = doc.attrs.unit;
    } else {
      out.text = live.text;
      if (live.attrs.unit) out.attrs.unit = live.attrs.unit;
    }
  } else if (doc.text !== undefined && live.text !== undefined) out.text = live.text;
  const used = new Set<XNode>();
  for (const dc of doc.children) {
    const k = keyOf(dc);
    let match: XNode | undefined;
    if (k !== undefined) match = live.children.find((lc) => !used.has(lc) && lc.tag === dc.tag && keyOf(lc) === k);
    else {
      const ordinal = doc.children.filter((x) => x.tag === dc.tag && keyOf(x) === undefined).indexOf(dc);
      match = live.children.filter((lc) => lc.tag === dc.tag && keyOf(lc) === undefined)[ordinal];
    }
    if (match && !used.has(match)) {
      used.add(match);
      out.children.push(projectXml(match, dc));
    }
  }
  return out;
}
