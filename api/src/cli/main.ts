import 'reflect-metadata';
import { ConfigError } from '../config/config.js';
import { createProgram } from './program.js';

try {
  await createProgram().parseAsync();
} catch (err) {
  console.error(`onecard: ${err instanceof ConfigError ? `bad configuration: ${err.message}` : err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
