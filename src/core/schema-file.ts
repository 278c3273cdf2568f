/** A plugin's schema, read from schema/<name>.schema.json (every plugin's `schema:` field). */
import { readFileSync } from 'node:fs';
import { SCHEMA_DIR } from './validate.js';

export function schemaOf(plugin: string): object {
  return JSON.parse(readFileSync(`${SCHEMA_DIR}${plugin}.schema.json`, 'utf8')) as object;
}

/** The fixed part of every plugin, from its manifest: its name, its schema and the keys of its section that are collections. */
export function sectionSpec(manifest: { name: string; collections: readonly string[] }): {
  name: string;
  schema: object;
  collections: readonly string[];
} {
  return { name: manifest.name, schema: schemaOf(manifest.name), collections: manifest.collections };
}
