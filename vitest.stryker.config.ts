import { mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The suite's config for mutation testing (stryker.config.mjs). Stryker runs the covering tests
 * once per mutant, so starting a fresh worker and importing the whole app for every test file
 * dominated the run time; one worker keeps its modules across files and runs. Mutants switch at
 * run time (a global Stryker sets), so reused modules see each new mutant; each test file still
 * gets its own database (freshDatabase).
 */
export default mergeConfig(base, { test: { isolate: false } });
