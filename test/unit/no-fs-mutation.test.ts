/**
 * The lint rule opd/no-fs-mutation (scripts/eslint/no-fs-mutation.mjs): in src/plugins and
 * src/host every host mutation goes through the doors of src/core/hostfs.ts. The rule's cases,
 * and the project's own ESLint config applying it to a plugin file (what `npm run lint` runs).
 */
import { describe, expect, it } from 'vitest';
import { ESLint, RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
import rule from '../../scripts/eslint/no-fs-mutation.mjs';
import { ROOT } from '../helpers/opd.js';

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const tester = new RuleTester({
  languageOptions: { parser: tseslint.parser, ecmaVersion: 2022, sourceType: 'module' },
});

tester.run('no-fs-mutation', rule, {
  valid: [
    `import { readFileSync, lstatSync, readdirSync } from 'node:fs'; readFileSync('/etc/x');`,
    `import { openSync, constants } from 'node:fs'; openSync('/x', constants.O_RDONLY | constants.O_NOFOLLOW);`,
    `import { openSync } from 'node:fs'; openSync('/x'); openSync('/x', 'r');`,
    `import * as fs from 'node:fs'; fs.readFileSync('/x'); fs.promises.readFile('/x');`,
    `import { promises as fsp } from 'node:fs'; await fsp.lstat('/x'); await fsp.readdir('/x');`,
    `import { putFile } from '../../core/hostfs.js'; await putFile(ctx, '/etc/x', 'y');`,
    `const o = { rm() {} }; o.rm();`,
  ],
  invalid: [
    { code: `import { writeFileSync } from 'node:fs';`, errors: [{ messageId: 'imported' }] },
    {
      code: `import { unlinkSync as u, rmSync } from 'fs';`,
      errors: [{ messageId: 'imported' }, { messageId: 'imported' }],
    },
    { code: `import { chmod, chown, mkdir } from 'node:fs/promises';`, errors: 3 },
    { code: `import * as fs from 'node:fs'; fs.renameSync('/a', '/b');`, errors: [{ messageId: 'called' }] },
    { code: `import fs from 'fs'; fs.promises.rm('/a', { recursive: true });`, errors: [{ messageId: 'called' }] },
    { code: `import { promises as fsp } from 'node:fs'; await fsp.rmdir('/a');`, errors: [{ messageId: 'called' }] },
    {
      code: `import * as fsp from 'node:fs/promises'; await fsp.symlink('/a', '/b');`,
      errors: [{ messageId: 'called' }],
    },
    { code: `import { openSync } from 'node:fs'; openSync('/x', 'w');`, errors: [{ messageId: 'open' }] },
    { code: `import { openSync } from 'node:fs'; openSync('/x', 'a+');`, errors: [{ messageId: 'open' }] },
    {
      code: `import { openSync, constants as C } from 'node:fs'; openSync('/x', C.O_WRONLY | C.O_CREAT);`,
      errors: [{ messageId: 'open' }],
    },
    { code: `import { openSync } from 'node:fs'; openSync('/x', 1);`, errors: [{ messageId: 'open' }] },
    { code: `import { openSync } from 'node:fs'; openSync('/x', flags);`, errors: [{ messageId: 'open' }] },
    { code: `import * as fs from 'node:fs'; await fs.promises.open('/x', 'w');`, errors: [{ messageId: 'open' }] },
    { code: `import { createWriteStream } from 'node:fs';`, errors: [{ messageId: 'imported' }] },
    { code: `import { ensureDir, writeFileAtomic } from '../../core/fsutil.js';`, errors: 2 },
  ],
});

describe('npm run lint with the project’s ESLint config', () => {
  const eslint = new ESLint({ cwd: ROOT });
  const lint = async (file: string, code: string) =>
    (await eslint.lintText(code, { filePath: `${ROOT}${file}` }))[0].messages.map((m) => m.ruleId);

  it('catches a mutating node:fs call in a plugin and in a shared host helper', async () => {
    const code = `import { unlinkSync } from 'node:fs';\nexport function gone(p: string): void {\n  unlinkSync(p);\n}\n`;
    expect(await lint('src/plugins/example/index.ts', code)).toContain('opd/no-fs-mutation');
    expect(await lint('src/host/example.ts', code)).toContain('opd/no-fs-mutation');
  });

  it('leaves the core’s own files alone (the doors and the audit trail write there)', async () => {
    const code = `import { unlinkSync } from 'node:fs';\nexport function gone(p: string): void {\n  unlinkSync(p);\n}\n`;
    expect(await lint('src/core/example.ts', code)).not.toContain('opd/no-fs-mutation');
  });
});
