/**
 * The cache's listening connection can die without a word: a NAT or firewall drops the idle
 * connection, or the database host fails over, and no FIN or RST ever arrives. The client then
 * believes it listens while every notice is lost, and a revoked token would be served from the
 * cache until it expires. A listening connection that stops answering must be given up, and
 * nothing served from the cache meanwhile.
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { type TokenStatus, TokenStatusCache } from './token-status-cache.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(() => db.close());

/** A TCP relay to the database that can go silent: it keeps every connection open and forwards nothing. */
async function relay(target: URL) {
  let silent = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(Number(target.port), target.hostname);
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => {
        if (!silent) to.write(chunk);
      });
      from.on('error', () => {});
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    goSilent: () => void (silent = true),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function until(cond: () => Promise<boolean>) {
  for (let waited = 0; !(await cond()); waited += 20) {
    if (waited > 10_000) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const LIVE: TokenStatus = { kind: 'MERCHANT', tenant_id: null, disabled: false, live: true };
const REVOKED: TokenStatus = { ...LIVE, live: false };

it('a listening connection that goes silent (no FIN, no RST) is given up: a revoked token is not served from the cache', async () => {
  const proxy = await relay(new URL(db.url));
  const cache = new TokenStatusCache({ databaseUrl: proxy.url, heartbeat: { everyMs: 100, silenceMs: 1_000 } });
  await cache.start();
  const other = new pg.Client({ connectionString: db.url });
  await other.connect();
  try {
    // What the database says about the token; the cache keeps it while nothing changes.
    let inDatabase = LIVE;
    const read = async () => inDatabase;
    expect(await cache.statusOf('c', 'j', read)).toEqual(LIVE);
    expect(cache.size).toBe(1);

    proxy.goSilent();
    await other.query(`insert into revoked_access_token (jti, client_id, expires_at) values ('j', 'c', now() + interval '1 minute')`);
    inDatabase = REVOKED;

    // The notice is lost on the silent connection; the cache must stop answering from memory.
    await until(async () => (await cache.statusOf('c', 'j', read))?.live === false);
    // And the silent connection is given up (which empties the cache), to listen again.
    await until(async () => cache.size === 0);
  } finally {
    await other.end();
    await proxy.close();
    await cache.close();
  }
});
