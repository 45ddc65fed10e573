/**
 * Every guide example marked runnable runs as pasted against a fresh demo (issue 22 item 5): the
 * platform started in-process as `npm start` does (temp data folder, demo seed, sandbox gateway),
 * then each runnable block of docs/*.md and docs/guides/*.md, in document order.
 *
 * A block is runnable when its info string says so: ```` ```graphql runnable as=merchant ```` or
 * ```` ```sh runnable as=operator ````. Every other example block (graphql, sh, js, ts, console, http)
 * says why it is not run: ```` ```js not-runnable: a fragment of your back end, … ````; a test fails
 * on a block that does neither. Blocks marked `session=<name>` (the quickstart's) share one shell and
 * run in their page's own test instead. `as` names the demo client whose token it runs with (a
 * `demo.json` client, or `lin`, the demo cardholder, through the cardholder app).
 * - GraphQL: each operation in the block, with the JSON of the `# variables:` comment below it (a
 *   comment may go on over `#` lines). An id written as its type's prefix and an ellipsis
 *   (`"UGF5bWVudDo…"`, a Payment) stands for the latest id of that type the page has produced so
 *   far (or the demo's own): what a reader pastes in from the answer before (a command's output counts). Passes with no
 *   `errors` and every `userErrors` empty.
 * - sh: run by bash with `set -eo pipefail` in a scratch folder of its page, with `ONECARD`, `DEMO` (demo.json),
 *   `CLIENT_ID`, `CLIENT_SECRET` and `TOKEN` of the client set, and `ONECARD_DATA_DIR` and
 *   `DATABASE_URL` as `npm start`'s shell has them (for `npx onecard …`); passes on exit code 0 with
 *   no GraphQL error or userError printed. `cwd=repo` runs it at the repository root instead (npm
 *   workspace commands, `npx onecard`).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { freePort } from '../src/db/embedded-postgres.js';
import { type RunningPlatform, startPlatform } from '../src/platform.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { cardholderAccessToken } from './support/oauth.js';

const repo = path.resolve(import.meta.dirname, '../..');

interface Block {
  file: string;
  line: number;
  lang: 'graphql' | 'sh';
  as: string;
  cwd: 'scratch' | 'repo';
  body: string;
}

/** The runnable blocks of one Markdown file, in order. */
export function runnableBlocks(file: string, text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    // A block inside a list item is indented; its lines carry the same indent.
    const open = lines[i]!.match(/^( *)```(graphql|sh)\s+(.*\brunnable\b.*)$/);
    // A session's blocks run together in one shell, by their page's own test (quickstart.test.ts).
    if (!open || /\bnot-runnable\b|\bsession=/.test(open[3]!)) continue;
    const indent = open[1]!.length;
    const attrs = Object.fromEntries([...open[3]!.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.trimStart().startsWith('```'); i++) body.push(lines[i]!.slice(indent));
    blocks.push({ file, line: start + 1, lang: open[2] as Block['lang'], as: attrs.as ?? 'none', cwd: attrs.cwd === 'repo' ? 'repo' : 'scratch', body: body.join('\n') });
  }
  return blocks;
}

/** A GraphQL block's operations, each with the variables of the `# variables:` comment after it. */
export function operationsOf(body: string): { document: string; variables: Record<string, unknown> }[] {
  const ops: { document: string[]; variables: string[] }[] = [];
  let inVariables = false;
  for (const line of body.split('\n')) {
    const variables = line.match(/^#\s*(?:\w+\s+)?variables:\s*(.*)$/);
    if (variables) {
      ops.at(-1)!.variables.push(variables[1]!);
      inVariables = true;
    } else if (line.startsWith('#')) {
      if (inVariables) ops.at(-1)!.variables.push(line.slice(1));
    } else if (/^(query|mutation|\{)/.test(line) || ops.length === 0) {
      if (line.trim() === '') continue;
      ops.push({ document: [line], variables: [] });
      inVariables = false;
    } else {
      ops.at(-1)!.document.push(line);
      inVariables = false;
    }
  }
  return ops.map((o) => ({ document: o.document.join('\n').trim(), variables: o.variables.length ? JSON.parse(o.variables.join(' ')) : {} }));
}

/** `Type` of a global id (or of an id's prefix, as the docs abbreviate them), if it is one. */
function typeOfId(value: string): string | null {
  if (!/^[A-Za-z0-9_-]{4,}$/.test(value)) return null;
  const m = Buffer.from(value, 'base64url').toString('utf8').match(/^([A-Z][A-Za-z]+):/);
  return m ? m[1]! : null;
}

/** Ids a value holds, by type, in order (a later one of a type wins). */
function collectIds(value: unknown, into: Map<string, string>): void {
  if (typeof value === 'string') {
    const type = typeOfId(value);
    if (type && /:[0-9a-f-]{36}$/.test(Buffer.from(value, 'base64url').toString('utf8'))) into.set(type, value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectIds(v, into);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) collectIds(v, into);
  }
}

const PLACEHOLDER = /"([A-Za-z0-9_-]{4,})…"/g;

/** Replaces each `"<prefix>…"` id with the latest id of its type. */
function fillIds(text: string, ids: Map<string, string>): string {
  return text.replace(PLACEHOLDER, (whole, prefix: string) => {
    const type = typeOfId(prefix);
    const id = type ? ids.get(type) : undefined;
    if (!id) throw new Error(`${whole}: no ${type ?? 'known'} id produced before this example`);
    return JSON.stringify(id);
  });
}

function emptyUserErrors(value: unknown, at = 'data'): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => emptyUserErrors(v, `${at}[${i}]`));
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (k === 'userErrors' && Array.isArray(v) && v.length > 0 ? [`${at}.userErrors: ${JSON.stringify(v)}`] : emptyUserErrors(v, `${at}.${k}`)));
}

let db: TestDatabase;
let dataDir: string;
let scratch: string;
let platform: RunningPlatform;
let demo: any;
const tokens = new Map<string, string>();

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-doc-examples-'));
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-doc-scratch-'));
  db = await freshDatabase();
  const port = await freePort();
  platform = await startPlatform(
    loadConfig({ NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}`, ONECARD_DATA_DIR: dataDir, DATABASE_URL: db.url }),
    pino({ level: 'silent' }),
  );
  demo = platform.demo;
});

afterAll(async () => {
  await platform?.stop();
  await db?.close();
  for (const dir of [dataDir, scratch]) if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** The token of a demo client with every scope it was registered with, or of `lin` through the cardholder app. */
async function tokenFor(as: string): Promise<string> {
  if (tokens.has(as)) return tokens.get(as)!;
  let token: string;
  if (as === 'lin') {
    const app = demo.clients.cardholderApp;
    const lin = demo.cardholders.find((c: { username: string }) => c.username === 'lin');
    token = await cardholderAccessToken(platform.url, { clientId: app.client_id, redirectUri: app.redirect_uri, username: lin.username, password: lin.password, scope: 'card:read card:topup card:manage' });
  } else {
    const client = demo.clients[as];
    if (!client) throw new Error(`no demo client ${as}`);
    const res = await fetch(`${platform.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: client.scope ?? '' }),
    });
    token = ((await res.json()) as { access_token: string }).access_token;
  }
  tokens.set(as, token);
  return token;
}

async function runGraphql(block: Block, ids: Map<string, string>): Promise<void> {
  for (const op of operationsOf(block.body)) {
    const document = fillIds(op.document, ids);
    const variables = JSON.parse(fillIds(JSON.stringify(op.variables), ids));
    const res = await fetch(`${platform.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await tokenFor(block.as)}` },
      body: JSON.stringify({ query: document, variables }),
    });
    const answer = (await res.json()) as { data?: unknown; errors?: unknown[] };
    const where = `${block.file}:${block.line} (as ${block.as})\n${document}\nvariables ${JSON.stringify(variables)}\nanswer ${JSON.stringify(answer)}`;
    expect(answer.errors, where).toBeUndefined();
    expect(emptyUserErrors(answer.data), where).toEqual([]);
    collectIds(answer.data, ids);
  }
}

/** A page's own scratch folder: its files (CSRs, CSV downloads) meet no other page's. */
async function scratchOf(file: string): Promise<string> {
  const dir = path.join(scratch, file.replace(/[/.]/g, '-'));
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

async function runShell(block: Block, ids: Map<string, string>): Promise<void> {
  const client = demo.clients[block.as];
  const env: NodeJS.ProcessEnv = {
    PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`,
    HOME: process.env.HOME,
    ONECARD: platform.url,
    // What `npm start`'s shell has: the CLI (`npx onecard …`) reaches the same database.
    ONECARD_DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    DEMO: path.join(dataDir, 'demo.json'),
    ...(client ? { CLIENT_ID: client.client_id, CLIENT_SECRET: client.client_secret } : {}),
    ...(block.as !== 'none' ? { TOKEN: await tokenFor(block.as) } : {}),
  };
  const cwd = block.cwd === 'repo' ? repo : await scratchOf(block.file);
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('bash', ['-c', `set -eo pipefail\n${block.body}`], { cwd, env, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  const where = `${block.file}:${block.line} (as ${block.as})\n${block.body}\nstdout:\n${stdout}\nstderr:\n${stderr}`;
  expect(code, where).toBe(0);
  // curl exits 0 on a GraphQL refusal: what it printed must not be one.
  expect(stdout, where).not.toMatch(/"errors":\[|"userErrors":\[\{/);
  // What a command printed is an answer too: a later `"<prefix>…"` may refer to an id in it.
  for (const word of stdout.match(/[A-Za-z0-9_-]{20,}/g) ?? []) collectIds(word, ids);
}

/** Languages of blocks a reader may paste or run; the others (json, text, csv, mermaid) show results or shapes. */
const EXAMPLE_LANGUAGES = /^( *)```(graphql|sh|js|ts|console|http)\b(.*)$/;

/** Example blocks neither runnable nor marked `not-runnable: <why>`: none may be left so. */
export function unaccountedBlocks(file: string, text: string): string[] {
  const found: string[] = [];
  let open = false;
  text.split('\n').forEach((line, i) => {
    if (!line.trimStart().startsWith('```')) return;
    if (open) {
      open = false;
      return;
    }
    open = true;
    const example = line.match(EXAMPLE_LANGUAGES);
    if (!example) return;
    const info = example[3]!;
    const runs = (/\brunnable\b/.test(info) && !/not-runnable/.test(info) && ['graphql', 'sh'].includes(example[2]!)) || /\brunnable session=\S+/.test(info);
    const why = info.match(/not-runnable:\s*(.*)$/)?.[1]?.trim() ?? '';
    // A reason says why in words, not a token.
    if (!runs && why.split(/\s+/).length < 4) found.push(`${file}:${i + 1}: ${line.trim()}`);
  });
  return found;
}

const files = [...(await fs.readdir(path.join(repo, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), ...(await fs.readdir(path.join(repo, 'docs/guides'))).filter((f) => f.endsWith('.md')).map((f) => `docs/guides/${f}`)].sort();
const pages = await Promise.all(files.map(async (file) => ({ file, blocks: runnableBlocks(file, await fs.readFile(path.join(repo, file), 'utf8')) })));

describe('every runnable example of the guides runs as pasted on a fresh demo', () => {
  it('every example block of docs/ and docs/guides/ is runnable (and so run, here or by its session’s test) or says why it is not', async () => {
    const texts = await Promise.all(files.map(async (file) => unaccountedBlocks(file, await fs.readFile(path.join(repo, file), 'utf8'))));
    expect(texts.flat()).toEqual([]);
  });

  it('the guides mark their examples runnable', () => {
    const marked = pages.filter((p) => p.blocks.length > 0).map((p) => p.file);
    expect(marked).toEqual(expect.arrayContaining(['docs/guides/biller.md', 'docs/guides/card-company.md', 'docs/guides/merchant.md', 'docs/guides/operator.md', 'docs/payments.md']));
  });

  for (const page of pages.filter((p) => p.blocks.length > 0)) {
    it(`${page.file}: ${page.blocks.length} example(s)`, async () => {
      // Ids the page refers to before producing them are the demo's own (its city, card, readers, …).
      const ids = new Map<string, string>();
      collectIds(demo, ids);
      for (const block of page.blocks) {
        if (block.lang === 'graphql') await runGraphql(block, ids);
        else await runShell(block, ids);
      }
      // A page's examples run one after another: its time grows with their number (13 took 60 s on a loaded machine).
    }, 30_000 + page.blocks.length * 15_000);
  }
});
