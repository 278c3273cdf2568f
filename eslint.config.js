// ESLint (flat config): typescript-eslint's recommended rules, formatting left to prettier
// (eslint-config-prettier), and the layer rule of docs/design.md as import restrictions (the full
// rule, with plugin folders and cycles, is test/unit/layers.test.ts).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import noFsMutation from './scripts/eslint/no-fs-mutation.mjs';

const upper = (...layers) =>
  layers.map((l) => ({
    group: [`**/${l}/*`, `**/${l}/**`],
    message: `layers point one way: this layer does not import ${l}/ (docs/design.md, test/unit/layers.test.ts)`,
  }));

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'bench/results/**',
      'coverage/**',
      'nix/**',
      '**/*.cjs',
      'src/plugins/*/section.gen.ts',
    ],
  }, // section.gen.ts: generated from schema/ by the build
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        performance: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        structuredClone: 'readonly',
        fetch: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        __dirname: 'readonly',
        queueMicrotask: 'readonly',
        globalThis: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    files: ['src/core/**/*.ts', 'src/audit/**/*.ts', 'src/exec.ts', 'src/dbus.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: upper('plugins', 'cli', 'daemon', 'fleet', 'run') }] },
  },
  {
    files: ['src/run/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: upper('plugins', 'cli', 'daemon', 'fleet') }] },
  },
  {
    files: ['src/daemon/**/*.ts', 'src/fleet/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: upper('plugins', 'cli') }] },
  },
  {
    // one door for every host mutation (src/core/hostfs.ts): no raw node:fs write, remove,
    // rename, chmod, chown, mkdir or writing open in plugins and their shared host helpers
    files: ['src/plugins/**/*.ts', 'src/host/**/*.ts'],
    plugins: { opd: { rules: { 'no-fs-mutation': noFsMutation } } },
    rules: { 'opd/no-fs-mutation': 'error' },
  },
);
