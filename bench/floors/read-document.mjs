#!/usr/bin/env node
// Floor of `opd validate` of a big document, as a whole process: read the file and parse it,
// nothing else. `json`: JSON.parse. `yaml`: the yaml package (opd's own YAML dependency) at its
// fastest, without checking keys for duplicates (its default check takes time quadratic in the
// number of keys of a map).
//   node bench/floors/read-document.mjs json|yaml FILE
import { readFileSync } from 'node:fs';

const [how, file] = process.argv.slice(2);
const text = readFileSync(file, 'utf8');
if (how === 'json') JSON.parse(text);
else if (how === 'yaml') (await import('yaml')).parse(text, { uniqueKeys: false });
else throw new Error(`read-document: json or yaml, not ${how}`);
