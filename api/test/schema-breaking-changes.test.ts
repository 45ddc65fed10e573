/**
 * Schema evolution is guarded: `onecard schema breaking` (run by `npm run schema:check`) fails on a
 * breaking change from schema/released.graphql unless schema/changes.json lists it with a reason and
 * a deprecation date at least six months old.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createProgram } from '../src/cli/program.js';

const root = path.resolve(import.meta.dirname, '../..');
let dir: string;
let released: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-schema-evolution-'));
  released = await fs.readFile(path.join(root, 'schema/released.graphql'), 'utf8');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
  for (const name of ['ONECARD_SCHEMA_FILE', 'ONECARD_RELEASED_SCHEMA_FILE', 'ONECARD_SCHEMA_CHANGES_FILE']) delete process.env[name];
});

/** Runs `onecard schema breaking` on a current schema and a changes list; returns its output and exit code. */
async function check(current: string, allowedBreakingChanges: unknown[]) {
  await fs.writeFile(path.join(dir, 'schema.graphql'), current);
  await fs.writeFile(path.join(dir, 'changes.json'), JSON.stringify({ allowedBreakingChanges }));
  Object.assign(process.env, {
    ONECARD_SCHEMA_FILE: path.join(dir, 'schema.graphql'),
    ONECARD_RELEASED_SCHEMA_FILE: path.join(root, 'schema/released.graphql'),
    ONECARD_SCHEMA_CHANGES_FILE: path.join(dir, 'changes.json'),
  });
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...p) => void lines.push(p.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...p) => void lines.push(p.join(' ')));
  try {
    await createProgram().exitOverride().parseAsync(['node', 'onecard', 'schema', 'breaking']);
    return { exitCode: Number(process.exitCode ?? 0), out: lines.join('\n') };
  } finally {
    process.exitCode = undefined;
    vi.restoreAllMocks();
  }
}

const withoutServerInfo = () => {
  // The field and its description.
  const current = released.replace(/^ {2}"""\n[^"]*"""\n {2}serverInfo: ServerInfo!\n/m, '');
  expect(current).not.toBe(released);
  return current;
};

it('the checked-in schema has no breaking change against the released one', async () => {
  const current = await fs.readFile(path.join(root, 'schema/schema.graphql'), 'utf8');
  const allowed = JSON.parse(await fs.readFile(path.join(root, 'schema/changes.json'), 'utf8')).allowedBreakingChanges;
  expect(await check(current, allowed)).toMatchObject({ exitCode: 0 });
});

it('a removed field that is not listed fails the check, naming the field and the policy', async () => {
  const result = await check(withoutServerInfo(), []);
  expect(result.exitCode).toBe(1);
  expect(result.out).toContain('FIELD_REMOVED Query.serverInfo');
  expect(result.out).toContain('not listed in schema/changes.json');
});

it('the same removal listed with a reason and a deprecation over six months old passes', async () => {
  const result = await check(withoutServerInfo(), [{ path: 'Query.serverInfo', type: 'FIELD_REMOVED', deprecatedOn: '2025-01-15', reason: 'replaced by Query.platform' }]);
  expect(result).toEqual({ exitCode: 0, out: expect.stringContaining('allowed breaking change  FIELD_REMOVED Query.serverInfo') });
});

it('a listed removal deprecated less than six months ago fails, saying from when it may ship', async () => {
  const recent = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);
  const result = await check(withoutServerInfo(), [{ path: 'Query.serverInfo', type: 'FIELD_REMOVED', deprecatedOn: recent, reason: 'replaced by Query.platform' }]);
  expect(result.exitCode).toBe(1);
  expect(result.out).toMatch(new RegExp(`deprecated on ${recent}: it may ship from \\d{4}-\\d{2}-\\d{2} \\(6 months\\)`));
});

it('an added optional field is not a breaking change', async () => {
  const current = released.replace(/^ {2}serverInfo: ServerInfo!\n/m, (line) => `${line}  motd: String\n`);
  expect(await check(current, [])).toMatchObject({ exitCode: 0 });
});
