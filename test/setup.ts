// Every test file may call validateDocument() directly: get the validator ready first.
import { preloadValidator } from '../src/core/validate.js';

await preloadValidator();
