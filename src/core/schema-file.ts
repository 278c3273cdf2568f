/** A plugin's schema, read from schema/<name>.schema.json (every plugin's `schema:` field). */
import { readFileSync } from 'node:fs';
import { SCHEMA_DIR } from './validate.js';

export function schemaOf(plugin: string): object {
  return JSON.parse(readFileSync(`${SCHEMA_DIR}${plugin}.schema.json`, 'utf8')) as object;
}
