/** The shipped examples (examples/): what the machine tests (test/machine/) apply as they are. */
import { join } from 'node:path';
import { ROOT } from './opd.js';

export const EXAMPLES = join(ROOT, 'examples');
