import { afterAll, beforeAll, expect, it } from 'vitest';
import { openOrm, type Orm } from '../src/db/orm.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';
import { TcpProxy } from './support/tcp-proxy.js';

let db: TestDatabase;
let proxy: TcpProxy;
let orm: Orm;
let server: TestServer;

beforeAll(async () => {
  db = await freshDatabase();
  const target = new URL(db.url);
  proxy = new TcpProxy(target.hostname, Number(target.port));
  await proxy.start();
  const viaProxy = new URL(db.url);
  viaProxy.port = String(proxy.port);
  orm = await openOrm(viaProxy.toString(), { poolMax: 4 });
  server = await startTestServer(orm);
});
afterAll(async () => {
  await server.close();
  await proxy.cut();
  await orm.close(true);
  await db.close();
});

async function readiness(): Promise<number> {
  return (await fetch(`${server.url}/readyz`)).status;
}

it('/readyz says 503 while the database is unreachable and recovers by itself when it returns', async () => {
  expect(await readiness()).toBe(200);
  // Idle pooled connections exist now; the outage kills them under the pool's feet.
  await proxy.cut();
  expect(await readiness()).toBe(503);
  expect(await readiness()).toBe(503);
  // The process lives on and still answers what needs no database.
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  expect((await graphql(server.url, '{ serverInfo { version } }')).body.data.serverInfo.version).toBeTruthy();

  await proxy.start(); // the same port again
  let status = 0;
  for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
    status = await readiness();
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  expect(status).toBe(200);
});
