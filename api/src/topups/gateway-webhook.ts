import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import express, { type Request, type Response } from 'express';
import { applyPayout } from '../settlement/payouts.js';
import { GATEWAY_SIGNATURE_HEADER, type GatewayEvent, type PaymentIntent, type Payout, type Refund } from './gateway/gateway-client.js';
import { verifySignatureHeader } from '../webhooks/webhook-signature.js';
import type { ClientSecretSeal } from './client-secret.js';
import { applyIntent, applyRefund } from './topups.service.js';

/** A payment intent's or refund's top-up: named in its metadata, or found by the gateway's id. */
async function topUpIdFor(em: EntityManager, column: 'gateway_intent_id' | 'gateway_refund_id', object: { id: string; metadata?: Record<string, string> }): Promise<string | null> {
  if (object.metadata?.topUpId) return object.metadata.topUpId;
  const [row] = await em.execute<{ id: string }[]>(`select id from top_up where ${column} = ?`, [object.id]);
  return row?.id ?? null;
}

/**
 * Handles one verified gateway event, once per event id: the event row and the change it causes
 * commit together, so a duplicate finds the row and changes nothing, and a failure leaves neither
 * (the gateway sends it again). Events arrive in any order: the top-up only moves forward.
 */
export async function handleGatewayEvent(em: EntityManager, event: GatewayEvent, clientSecrets: ClientSecretSeal | null): Promise<{ duplicate: boolean; outcome: string }> {
  return em.transactional(async (tx) => {
    const [fresh] = await tx.execute<{ id: string }[]>(`insert into gateway_event (id, type, object_id, outcome) values (?, ?, ?, 'received') on conflict (id) do nothing returning id`, [event.id, event.type, event.data?.object?.id ?? null]);
    if (!fresh) return { duplicate: true, outcome: 'duplicate' };
    let outcome = 'ignored';
    if (event.type.startsWith('payment_intent.')) {
      const intent = event.data.object as PaymentIntent;
      const topUpId = await topUpIdFor(tx, 'gateway_intent_id', intent);
      outcome = topUpId ? await applyIntent(tx, topUpId, intent, `gateway event ${event.id}`, clientSecrets) : 'unknown';
    } else if (event.type.startsWith('refund.')) {
      const refund = event.data.object as Refund;
      const topUpId = await topUpIdFor(tx, 'gateway_refund_id', refund);
      outcome = topUpId ? await applyRefund(tx, topUpId, refund, `gateway event ${event.id}`) : 'unknown';
    } else if (event.type.startsWith('payout.')) {
      outcome = await applyPayout(tx, event.data.object as Payout);
    }
    await tx.execute(`update gateway_event set outcome = ? where id = ?`, [outcome, event.id]);
    return { duplicate: false, outcome };
  });
}

/**
 * POST /webhooks/gateway: the raw body is what the gateway signed, so it is read raw and parsed
 * only after the signature (and its timestamp, within 5 minutes) verifies.
 */
export function gatewayWebhookRoutes(orm: MikroORM, webhookSecret: () => string | undefined, clientSecrets: ClientSecretSeal): express.Router {
  const router = express.Router();
  router.post('/gateway', express.raw({ type: () => true, limit: '512kb' }), async (req: Request, res: Response) => {
    const secret = webhookSecret();
    if (!secret) {
      res.status(503).json({ error: 'no payment gateway is configured' });
      return;
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const check = verifySignatureHeader(secret, body, req.get(GATEWAY_SIGNATURE_HEADER));
    if (!check.ok) {
      req.log.warn({ reason: check.reason }, 'gateway webhook refused');
      res.status(400).json({ error: 'signature refused', reason: check.reason });
      return;
    }
    let event: GatewayEvent;
    try {
      event = JSON.parse(body.toString('utf8')) as GatewayEvent;
      if (typeof event?.id !== 'string' || typeof event.type !== 'string' || typeof event.data?.object !== 'object') throw new Error('not an event');
    } catch {
      res.status(400).json({ error: 'the body is not a gateway event' });
      return;
    }
    const result = await handleGatewayEvent(orm.em.fork(), event, clientSecrets);
    // A conflict (a refund of a top-up the card already holds) or a mismatch is for a person to settle.
    if (result.outcome === 'conflict' || result.outcome === 'mismatch') req.log.error({ event: event.id, type: event.type, ...result }, 'gateway event needs attention');
    else req.log.info({ event: event.id, type: event.type, ...result }, 'gateway event');
    res.json({ received: true, ...result });
  });
  return router;
}
