import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
});
afterAll(async () => {
  await server.close();
  await db.close();
});

describe('health, readiness and request ids', () => {
  it('/healthz and /readyz answer while the database is up', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('every response carries a request id, a fresh one or the caller’s own', async () => {
    const fresh = await fetch(`${server.url}/healthz`);
    expect(fresh.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const mine = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'trace-42' } });
    expect(mine.headers.get('x-request-id')).toBe('trace-42');
    const hostile = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'a b<script>' } });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('an unknown path is a JSON 404', async () => {
    const res = await fetch(`${server.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not found' });
  });
});

describe('GraphQL over HTTP', () => {
  it('answers a query and reports its cost in extensions', async () => {
    const { status, body } = await graphql(server.url, 'query Info { serverInfo { version publicUrl time } }');
    expect(status).toBe(200);
    expect(body.data.serverInfo.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(body.data.serverInfo.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
    expect(body.extensions.cost).toEqual({ requested: 4, limit: 5_000, throttleStatus: { maximumAvailable: expect.any(Number), currentlyAvailable: expect.any(Number), restoreRate: expect.any(Number) } });
  });

  it('refuses tenant data to an anonymous caller with UNAUTHENTICATED', async () => {
    const { status, body } = await graphql(server.url, '{ ledgerAccounts { edges { node { code } } } }');
    expect(status).toBe(401);
    expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(body.data).toBeNull();
  });

  it('a malformed body or query gets a clear code and no stack trace', async () => {
    const broken = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(broken.status).toBe(400);
    const brokenBody = await broken.text();
    expect(brokenBody).toContain('BAD_REQUEST');
    expect(brokenBody).not.toMatch(/at .*\.js:\d+/);

    const invalid = await graphql(server.url, '{ serverInfo { nope } }');
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors[0].extensions).toEqual({ code: 'GRAPHQL_VALIDATION_FAILED' });
  });

  it.each([
    ['too deep', `{ node(id: "x") { ... on JournalEntry { ${'reverses { '.repeat(13)} id ${'} '.repeat(13)} } } }`, /depth/],
    ['too many aliases', `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: serverInfo { version }`).join(' ')} }`, /aliases/],
    ['too costly', `{ ${Array.from({ length: 15 }, (_, i) => `p${i}: ledgerAccounts(first: 100) { edges { node { id code balance { amount currency } } } }`).join(' ')} }`, /cost exceeds 5000/],
  ])('refuses a query that is %s with QUERY_TOO_COMPLEX before running it', async (_name, query, reason) => {
    const { status, body } = await graphql(server.url, query);
    expect(status).toBe(400);
    expect(body.errors[0].extensions.code).toBe('QUERY_TOO_COMPLEX');
    expect(body.errors[0].message).toMatch(reason);
  });

  it('a full page of 100 is within the cost budget: a connection’s edges are not charged twice', async () => {
    const { status, body } = await graphql(server.url, '{ ledgerAccounts(first: 100) { edges { node { id code balance { amount currency } } } } }');
    expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED'); // past the cost check, stopped by auth
    expect(status).toBe(401);
    expect(body.extensions.cost).toMatchObject({ requested: 701, limit: 5_000 });
  });

  it('counts and times operations by name in /metrics', async () => {
    await graphql(server.url, 'query MetricsProbe { serverInfo { version } }');
    await graphql(server.url, 'query MetricsProbe { serverInfo { version } }');
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('onecard_graphql_requests_total{operation="MetricsProbe",type="query",outcome="ok"} 2');
    expect(text).toMatch(/onecard_graphql_request_duration_seconds_count\{operation="MetricsProbe",type="query"\} 2/);
  });
});

describe('GraphiQL', () => {
  it('a browser gets GraphiQL whose every asset comes from this server', async () => {
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    const refs = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThanOrEqual(2);
    for (const ref of refs) {
      expect(ref, 'same-origin path').toMatch(/^\/[^/]/);
      const asset = await fetch(new URL(ref, server.url));
      expect(asset.status, ref).toBe(200);
      const body = await asset.text();
      // No stylesheet URL, script import or worker pointing at another origin.
      expect(body).not.toMatch(/url\(\s*['"]?(https?:)?\/\//);
      expect(body).not.toMatch(/\b(import|importScripts)\(\s*['"`](https?:)?\/\//);
    }
  });

  it('a GraphQL client on GET still gets GraphQL', async () => {
    const res = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ serverInfo { version } }')}`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).data.serverInfo.version).toBeTruthy();
  });
});
