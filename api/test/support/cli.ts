import { vi } from 'vitest';
import { createProgram } from '../../src/cli/program.js';

/**
 * Runs `onecard <args>` in this process, as the tests of the CLI do: what it printed to stdout and
 * stderr (each line as printed, and joined), and its exit code. The console stays captured until
 * the test's spies are restored.
 */
export async function onecard(...args: string[]): Promise<{ out: string; err: string; exitCode: number; printed: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts) => void out.push(parts.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...parts) => void err.push(parts.join(' ')));
  await createProgram().exitOverride().parseAsync(['node', 'onecard', ...args]);
  return { out: out.join('\n'), err: err.join('\n'), exitCode: Number(process.exitCode ?? 0), printed: [...out, ...err] };
}
