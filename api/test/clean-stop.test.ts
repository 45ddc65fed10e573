/**
 * Ctrl-C in a terminal is a clean stop (issue 19): the terminal sends SIGINT to its whole foreground
 * process group. The API, with its embedded PostgreSQL, is started in a process group of its own
 * (as a shell starts a job), the group gets SIGINT, and the API must stop everything in order and
 * exit 0 without a warning or an error in its log: the embedded PostgreSQL, in a group of its own,
 * must not hear the terminal and stop under the API's feet. The API runs from its TypeScript sources
 * (support/ts-loader.mjs), as `node api/dist/main.js` would after `npm run build`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { freePort } from '../src/db/embedded-postgres.js';
import { TEST_KEK } from './support/server.js';

const repo = path.resolve(import.meta.dirname, '../..');

// WEB_CONCURRENCY=2: a primary (database, jobs, sandbox gateway) and two API workers (node:cluster), all in the one process group.
// A service manager (systemd, a container runtime) sends SIGTERM to the main process only: the primary passes it on to its workers.
it.each([
  ['SIGINT to the terminal’s process group (one process)', '1', 'group'],
  ['SIGINT to the terminal’s process group (a primary and two API workers, WEB_CONCURRENCY=2)', '2', 'group'],
  ['SIGTERM to the primary alone (WEB_CONCURRENCY=2)', '2', 'primary'],
] as const)('%s: the API stops in order, PostgreSQL last, exit 0, no warning or error logged', async (_name, workers, target) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-stop-'));
  await fs.chmod(dir, 0o755); // the embedded PostgreSQL may run as another user (when we are root)
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', path.join(repo, 'api/test/support/ts-loader.mjs'), path.join(repo, 'api/src/main.ts')], {
    cwd: repo,
    detached: true, // its own process group, as a terminal's job
    env: { ...process.env, NODE_ENV: 'test', ONECARD_DATA_DIR: dir, PORT: String(port), HOST: '127.0.0.1', ONECARD_DEMO: 'false', LOG_LEVEL: 'info', ONECARD_KEY_ENCRYPTION_KEY: TEST_KEK, DATABASE_URL: '', WEB_CONCURRENCY: workers },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    // Up, as the terminal shows it (the banner comes once the stop handlers are in place): a bound of three minutes for a first start (initdb) on a loaded machine.
    for (let waited = 0; !output.includes('OneCard is running'); waited += 250) {
      if (child.exitCode !== null) throw new Error(`the API exited at start:\n${output}`);
      if (waited > 180_000) throw new Error(`the API did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status)).toBe(200);
    if (target === 'group') process.kill(-child.pid!, 'SIGINT'); // what Ctrl-C does: the whole group
    else process.kill(child.pid!, 'SIGTERM');
    const { code, signal } = await exited;

    const lines = output.split('\n').filter((l) => l.startsWith('{'));
    const troubles = lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 40);
    expect(troubles, output).toEqual([]);
    expect(output).not.toMatch(/\n\s+at /); // no stack trace anywhere
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(expect.arrayContaining(['stopping', 'embedded PostgreSQL stopped']));
    if (workers !== '1') {
      // Each worker stopped itself (it heard the Ctrl-C), and the primary stopped the database after them.
      const logged = lines.map((l) => JSON.parse(l) as { msg: string; worker?: number });
      expect(logged.filter((l) => l.msg === 'stopping' && l.worker !== undefined).map((l) => l.worker).sort()).toEqual([1, 2]);
      expect(logged.findIndex((l) => l.msg === 'embedded PostgreSQL stopped')).toBeGreaterThan(Math.max(...logged.map((l, i) => (l.msg === 'stopping' && l.worker !== undefined ? i : -1))));
    }
    // PostgreSQL was stopped (by the API), not left running.
    await expect(fs.access(path.join(dir, 'pg', 'postmaster.pid'))).rejects.toThrow();
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}, 300_000);
