import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Issue 18, problem 5: slow and idle clients must not hold the server's sockets. Small limits
 * here; the defaults and what they bound are in docs/security.md#http-limits.
 */

let db: TestDatabase;
let server: TestServer;
let capped: TestServer;
let shortKeepAlive: TestServer;
let production: TestServer;
let productionWithToken: TestServer;

const PRODUCTION = { NODE_ENV: 'production', GATEWAY_URL: 'http://127.0.0.1:9', GATEWAY_SECRET_KEY: 'sk_test', GATEWAY_WEBHOOK_SECRET: 'whsec_0123456789abcdef' };
const METRICS_TOKEN = 'scrape-me-0123456789abcdef';
// Keep-alive and idle time-outs at their long defaults here: only the request limits may close anything.
const LIMITS = { HTTP_HEADERS_TIMEOUT_MS: '800', HTTP_REQUEST_TIMEOUT_MS: '1500' };

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm, LIMITS);
  // Long time-outs, so that only the cap closes anything.
  capped = await startTestServer(db.orm, { HTTP_MAX_CONNECTIONS: '5' });
  shortKeepAlive = await startTestServer(db.orm, { HTTP_KEEP_ALIVE_TIMEOUT_MS: '500' });
  production = await startTestServer(db.orm, PRODUCTION);
  productionWithToken = await startTestServer(db.orm, { ...PRODUCTION, METRICS_TOKEN });
});
afterAll(async () => {
  await server?.close();
  await capped?.close();
  await shortKeepAlive?.close();
  await production?.close();
  await productionWithToken?.close();
  await db?.close();
});

interface RawConnection {
  socket: Socket;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
}

async function rawConnection(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed };
}

function get(path: string, host: string): string {
  return `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: keep-alive\r\n\r\n`;
}

describe('HTTP limits against slow and idle clients', () => {
  it('a request body trickled a byte at a time is cut at the request time-out (408), long before it ends', async () => {
    const { socket, closed } = await rawConnection(server.url);
    const length = 10_000;
    socket.write(`POST /graphql HTTP/1.1\r\nhost: ${new URL(server.url).host}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`);
    let sent = 0;
    const trickle = setInterval(() => {
      if (socket.writable) {
        socket.write('{');
        sent += 1;
      }
    }, 100);
    const answer = await closed;
    clearInterval(trickle);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(sent).toBeLessThan(length);
  }, 30_000);

  it('sockets that connect and send nothing are answered 408 and closed at the headers time-out', async () => {
    const idle = await Promise.all(Array.from({ length: 50 }, () => rawConnection(server.url)));
    const answers = await Promise.all(idle.map((c) => c.closed));
    expect(answers.map((a) => a.split('\r\n')[0])).toEqual(Array(50).fill('HTTP/1.1 408 Request Timeout'));
  }, 30_000);

  it('a socket that sends half a request line and stops is answered 408 and closed', async () => {
    const { socket, closed } = await rawConnection(server.url);
    socket.write('GET /heal');
    expect(await closed).toMatch(/^HTTP\/1\.1 408/);
  }, 30_000);

  it('an idle keep-alive connection is closed after its response', async () => {
    const { socket, closed } = await rawConnection(shortKeepAlive.url);
    socket.write(get('/healthz', new URL(shortKeepAlive.url).host));
    const answer = await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('"status":"ok"');
  }, 30_000);

  it('connections over the cap are closed as they arrive; a freed place can be used again', async () => {
    const host = new URL(capped.url).host;
    const held: RawConnection[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await rawConnection(capped.url);
      // A whole answer on each, so the server has surely counted it.
      const answered = new Promise<void>((resolve) => c.socket.once('data', () => resolve()));
      c.socket.write(get('/healthz', host));
      await answered;
      held.push(c);
    }
    const extra = await rawConnection(capped.url);
    extra.socket.write(get('/healthz', host));
    expect(await extra.closed).toBe('');

    held[0]!.socket.destroy();
    await held[0]!.closed;
    // The server notices the close a moment after the client: try again until it has.
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      status = await fetch(`${capped.url}/healthz`, { headers: { connection: 'close' } }).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    for (const c of held.slice(1)) c.socket.destroy();
  }, 30_000);
});

describe('/metrics in production', () => {
  it('is not served without METRICS_TOKEN', async () => {
    const res = await fetch(`${production.url}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('onecard_http_requests_total');
  });

  it('with METRICS_TOKEN, answers only that bearer token', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token', `Basic ${METRICS_TOKEN}`, `Bearer ${METRICS_TOKEN}x`]) {
      const res = await fetch(`${productionWithToken.url}/metrics`, { headers: authorization ? { authorization } : {} });
      expect(res.status, authorization).toBe(401);
      expect(await res.text()).not.toContain('onecard_http_requests_total');
    }
    const res = await fetch(`${productionWithToken.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('onecard_http_requests_total');
  });

  it('outside production without a token it stays open, for a developer', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
  });
});
