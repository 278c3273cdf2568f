// Types of the ESLint rule for the tests that import it (test/unit/no-fs-mutation.test.ts).
import type { Rule } from 'eslint';
declare const rule: Rule.RuleModule;
export default rule;
