/**
 * The yaml package, loaded on first use: documents are read by the fast path (yaml-fast.ts), and
 * the yaml package — source positions for a message, the exact parse, `--vars` files — is needed
 * only now and then. Loading it with every command cost a fifth of `opd validate`'s start-up.
 */
import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');
let yaml: Yaml | undefined;

export function yamlPackage(): Yaml {
  return (yaml ??= createRequire(import.meta.url)('yaml') as Yaml);
}
