/**
 * What the settlement tests share: cities whose business day is well inside its daytime whenever
 * the test runs, offline transit purchases made on a virtual card as a terminal and its PSAM make
 * them, a cardholder app of any card company, ledger read-outs, and a front for the sandbox gateway
 * that can lose the answer to a payout, make a participant's bank refuse it, and hold webhooks.
 */
import { createSign } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EntityManager } from '@mikro-orm/postgresql';
import { expect } from 'vitest';
import { VirtualCardTransport, type VirtualCpuCard } from '../../../sdk-js/src/index.js';
import { createCardholder } from '../../src/auth/cardholders.service.js';
import { createClient } from '../../src/auth/clients.service.js';
import { ALG_3DES } from '../../src/cardcrypto/algorithm.js';
import { diversifyKey } from '../../src/cardcrypto/diversify.js';
import { purchaseMac1, purchaseSessionKey } from '../../src/cardcrypto/epurse.js';
import * as apdu from '../../src/readers/session/apdu.js';
import { terminalIdOf } from '../../src/readers/session/terminal.js';
import { offlineBatchSignedBytes } from '../../src/settlement/offline-batch-signature.js';
import { GATEWAY_SIGNATURE_HEADER } from '../../src/topups/gateway/gateway-client.js';
import { addCity, addMasterKeys, type CardSessionWorld, type MasterKeys, type TestCity, type TestReader } from './card-sessions.js';
import { bearerClient, cardholderAccessToken } from './oauth.js';

// ——— cities and days ———

/**
 * A time zone where it is between 10:00 and 13:59 now: a test's flows, made within a minute, all
 * fall on one business day there, and yesterday is plainly yesterday, whatever the hour of the run.
 */
export function middayTimeZone(now = new Date()): string {
  const hourIn = (timeZone: string) => Number(new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', hourCycle: 'h23' }).format(now));
  const zones = ['Asia/Shanghai', ...Intl.supportedValuesOf('timeZone')];
  const zone = zones.find((z) => hourIn(z) >= 10 && hourIn(z) <= 13);
  if (!zone) throw new Error('no time zone is at mid-day now');
  return zone;
}

export interface SettlementCity extends TestCity {
  timeZone: string;
  keys: MasterKeys;
}

/** A city (card company, working CA, card master keys) whose local time is mid-day now. */
export async function settlementCity(world: CardSessionWorld, input: { code: string; name: string; cardCompanyName: string; cardCode: string }): Promise<SettlementCity> {
  const city = await addCity(world, input);
  const timeZone = middayTimeZone();
  await world.db.orm.em.fork().execute(`update city set time_zone = ? where id = ?`, [timeZone, city.cityId]);
  return { ...city, timeZone, keys: await addMasterKeys(world, city, '3DES') };
}

/** The city's local date `days` from today, `YYYY-MM-DD`. */
export async function localDay(em: EntityManager, cityId: string, days = 0): Promise<string> {
  const [row] = await em.execute<{ day: string }[]>(`select ((now() at time zone time_zone)::date + ?::int)::text as day from city where id = ?`, [days, cityId]);
  return row!.day;
}

/** The instant a city's clock shows `day` at `time` (`HH:MM`). */
export async function localInstant(em: EntityManager, cityId: string, day: string, time: string): Promise<Date> {
  const [row] = await em.execute<{ at: Date }[]>(`select ((?::date)::timestamp + ?::interval) at time zone time_zone as at from city where id = ?`, [day, time, cityId]);
  return new Date(row!.at);
}

/** The day after `day`, `YYYY-MM-DD`. */
export const nextDay = (day: string) => new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);

// ——— people ———

let holders = 0;

/** A cardholder signed in to a card company's app with PKCE, as a real app does: the holder's id and a GraphQL caller. */
export async function holderApp(world: CardSessionWorld, cardCompanyId: string, scopes = ['card:read', 'card:topup']) {
  const username = `settle-holder-${++holders}`;
  const em = world.db.orm.em.fork();
  const id = (await createCardholder(em, { username, password: `${username} password 1`, displayName: username })).id;
  const redirectUri = 'http://127.0.0.1:8797/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: cardCompanyId, name: 'Card App', scopes, redirectUris: [redirectUri] });
  const token = await cardholderAccessToken(world.server.url, { clientId: client.client_id, redirectUri, username, password: `${username} password 1`, scope: scopes.join(' ') });
  return { id, app: bearerClient(world.server.url, token) };
}

// ——— offline transit ———

export interface OfflineRide {
  asn: string;
  cardCity: string;
  offlineCounter: number;
  amount: number;
  terminalSerial: number;
  date: string;
  time: string;
  tac: string;
}

let terminalSerials = 5000;

/**
 * One offline purchase on the card at a terminal, as the terminal and its PSAM run it (INITIALIZE
 * FOR PURCHASE, DEBIT FOR PURCHASE with MAC1), on the card's own date `day` (YYYY-MM-DD) and `time` (hhmmss).
 */
export async function offlineRide(card: VirtualCpuCard, terminal: TestReader, amount: number, masterPurchaseKey: string, day: string, time = '081500'): Promise<OfflineRide> {
  const t = new VirtualCardTransport(card);
  const send = async (command: Buffer) => {
    const r = Buffer.from(await t.transmit(command));
    expect(r.subarray(-2).toString('hex')).toBe('9000');
    return r.subarray(0, -2);
  };
  await send(apdu.selectApplication());
  const publicData = apdu.parsePublicData(await send(apdu.readPublicData()));
  const terminalId = terminalIdOf({ terminal_number: terminal.terminalNumber! });
  const init = apdu.parseInitializeForPurchase(await send(apdu.initializeForPurchase(1, amount, terminalId)));
  const terminalSerial = ++terminalSerials;
  const date = day.replaceAll('-', '');
  const dpk = diversifyKey(ALG_3DES, Buffer.from(masterPurchaseKey, 'hex'), publicData.asn);
  const sessionKey = purchaseSessionKey({ algorithm: ALG_3DES, purchaseKey: dpk, random: init.random, offlineCounter: init.offlineCounter, terminalSerial });
  const mac1 = purchaseMac1({ algorithm: ALG_3DES, sessionKey, amount, terminalId, date, time });
  const { tac } = apdu.parseDebitForPurchase(await send(apdu.debitForPurchase(terminalSerial, date, time, mac1)));
  return { asn: publicData.asn.toString('hex').toUpperCase(), cardCity: publicData.cityCode, offlineCounter: init.offlineCounter, amount, terminalSerial, date, time, tac: tac.toString('hex').toUpperCase() };
}

const UPLOAD = `mutation($input: UploadOfflineBatchInput!) {
  uploadOfflineBatch(input: $input) { batch { records { index outcome } } userErrors { code message } }
}`;

/** The terminal's owner uploads a batch its terminal signed; returns each record's outcome. */
export async function uploadRides(owner: { request<T>(query: string, variables?: Record<string, unknown>): Promise<T> }, terminal: TestReader, batchId: string, rides: OfflineRide[]): Promise<string[]> {
  const body = JSON.stringify({ records: rides });
  const signature = createSign('sha256').update(offlineBatchSignedBytes(terminal.id, batchId, body)).sign(terminal.deviceKeyPem).toString('base64');
  const reply = await owner.request<{ uploadOfflineBatch: { batch: { records: { outcome: string }[] } | null; userErrors: { code: string; message: string }[] } }>(UPLOAD, {
    input: { terminal: terminal.id, batchId, body, signature, certificate: terminal.cityPem },
  });
  expect(reply.uploadOfflineBatch.userErrors).toEqual([]);
  return reply.uploadOfflineBatch.batch!.records.map((r) => r.outcome);
}

// ——— ledger read-outs ———

/** An account's balance on its normal side (0 for an account never opened). */
export async function balanceOf(em: EntityManager, code: string): Promise<bigint> {
  const [row] = await em.execute<{ balance: string }[]>(`select balance::text as balance from ledger_account where code = ?`, [code]);
  return BigInt(row?.balance ?? 0);
}

/** An entry's postings by account code, debits positive; {} when there is no such entry. */
export async function postingsOf(em: EntityManager, entryKey: string): Promise<Record<string, bigint>> {
  const rows = await em.execute<{ code: string; amount: string }[]>(
    `select a.code, sum(p.amount)::text as amount from journal_entry e join posting p on p.entry_id = e.id join ledger_account a on a.id = p.account_id where e.entry_key = ? group by a.code`,
    [entryKey],
  );
  return Object.fromEntries(rows.map((r) => [r.code, BigInt(r.amount)]));
}

/** Polls until `check` answers something other than undefined (a webhook being delivered), or fails after ~10 s. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

// ——— the gateway, from the outside ———

export interface GatewayFront {
  /** The gateway API as the platform reaches it: give this to a GatewayClient. */
  url: string;
  /** Where the gateway sends its webhooks: give this to the sandbox. */
  webhookUrl: string;
  /** Participants (`KIND:id`) whose payout requests reach the gateway but whose answers never come back (the client times out). */
  loseAnswersOf: Set<string>;
  /** Participants (`KIND:id`) whose bank refuses their payouts, with the failure code (the sandbox fails them after its delay). */
  bankRefuses: Map<string, string>;
  /** While true, webhooks are taken (200) and kept, to be sent on by release(). */
  holdWebhooks: boolean;
  /** Payout requests that reached the gateway, with their idempotency keys. */
  payoutRequests: { idempotencyKey: string; participant: string }[];
  /** Sends on the held webhooks, in order, and stops holding. */
  release(): Promise<void>;
  close(): Promise<void>;
}

async function readAll(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * An HTTP front between the platform and the sandbox gateway, both ways: API calls pass through to
 * the gateway (and may lose their answer, or carry the sandbox's switch that makes the bank refuse
 * a payout); webhooks from the gateway pass through to the platform (or are held).
 */
export async function startGatewayFront(opts: { gatewayUrl: string; webhookTarget: () => string }): Promise<GatewayFront> {
  const held: { body: Buffer; signature: string }[] = [];
  const hanging = new Set<http.ServerResponse>();
  const forwardWebhook = async (body: Buffer, signature: string) => {
    const res = await fetch(opts.webhookTarget(), { method: 'POST', headers: { 'content-type': 'application/json', [GATEWAY_SIGNATURE_HEADER]: signature }, body });
    return { status: res.status, text: await res.text() };
  };
  const front: GatewayFront = {
    url: '',
    webhookUrl: '',
    loseAnswersOf: new Set(),
    bankRefuses: new Map(),
    holdWebhooks: false,
    payoutRequests: [],
    async release() {
      front.holdWebhooks = false;
      for (const w of held.splice(0)) await forwardWebhook(w.body, w.signature);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = http.createServer((req, res) => {
    void (async () => {
      let body = await readAll(req);
      const path = req.url ?? '/';
      if (path === '/webhooks/gateway') {
        const signature = String(req.headers[GATEWAY_SIGNATURE_HEADER] ?? '');
        if (front.holdWebhooks) {
          held.push({ body, signature });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"held":true}');
          return;
        }
        const answer = await forwardWebhook(body, signature);
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.text);
        return;
      }
      let participant: string | null = null;
      if (req.method === 'POST' && path === '/v1/payouts') {
        const form = new URLSearchParams(body.toString('utf8'));
        participant = form.get('metadata[participant]');
        front.payoutRequests.push({ idempotencyKey: String(req.headers['idempotency-key']), participant: participant ?? '' });
        const refusal = participant ? front.bankRefuses.get(participant) : undefined;
        if (refusal) {
          form.append('metadata[sandbox_failure_code]', refusal);
          body = Buffer.from(form.toString());
        }
      }
      const headers: Record<string, string> = {};
      for (const name of ['authorization', 'content-type', 'idempotency-key', 'accept']) if (typeof req.headers[name] === 'string') headers[name] = req.headers[name] as string;
      const upstream = await fetch(`${opts.gatewayUrl}${path}`, { method: req.method, headers, body: req.method === 'POST' ? body : undefined });
      const text = await upstream.text();
      if (participant && front.loseAnswersOf.has(participant)) {
        // The gateway did it; its answer is lost on the way back. The caller's time-out ends the wait.
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' }).end(text);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(502).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  front.url = base;
  front.webhookUrl = `${base}/webhooks/gateway`;
  return front;
}

// ——— interleaving transactions, by the database's own locks ———

/**
 * Takes a row lock (the `select … for update` given) in a transaction of its own and keeps it until
 * release(): a test uses it to stop another transaction at a known step and let a third one pass it.
 */
export async function holdLock(em: EntityManager, sql: string, params: unknown[] = []): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  let failed!: (err: unknown) => void;
  const taken = new Promise<void>((resolve, reject) => ((locked = resolve), (failed = reject)));
  const done = em
    .transactional(async (tx) => {
      const rows = await tx.execute(sql, params);
      if (rows.length === 0) throw new Error(`nothing to lock: ${sql}`);
      locked();
      await released;
    })
    .catch((err: unknown) => failed(err));
  await taken;
  return {
    async release() {
      release();
      await done;
    },
  };
}

/** Waits until `n` sessions of this database wait for a lock (the interleaving a test set up has been reached). */
export async function lockWaiters(em: EntityManager, n: number): Promise<void> {
  await eventually(`${n} transactions waiting for a lock`, async () => {
    const [row] = await em.execute<{ n: number }[]>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
    return row!.n >= n ? true : undefined;
  });
}
