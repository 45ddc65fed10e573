import type { EventOwnerKind } from './outbox.js';

/**
 * Every event type an endpoint may subscribe to, who receives it, and what it means. A context that
 * records a new type adds it here (docs/webhooks.md lists the payloads).
 */
export const WEBHOOK_EVENT_TYPES: Record<string, { owners: EventOwnerKind[]; description: string }> = {
  'topup.paid': { owners: ['ISSUER'], description: 'A top-up was paid at the gateway: a pending load, written onto the card at the next reader (补登).' },
  'topup.loaded': { owners: ['ISSUER'], description: 'A paid top-up is on the card (its TAC proved it).' },
  'topup.failed': { owners: ['ISSUER'], description: 'The payment of a top-up was declined or refused.' },
  'topup.canceled': { owners: ['ISSUER'], description: 'The payment of a top-up was canceled or expired at the gateway.' },
  'topup.refunded': { owners: ['ISSUER'], description: 'A top-up was refunded through the gateway.' },
  'card.low_balance': { owners: ['ISSUER'], description: 'A purchase took a card’s purse below its low-balance threshold.' },
  'card.auto_top_up_refused': { owners: ['ISSUER'], description: 'An auto top-up was not made (a limit refused it).' },
  'card.proved_purchase_returned': { owners: ['ISSUER'], description: 'A card proved a purchase whose payment was canceled since: its value was returned as a pending load.' },
  'payment.succeeded': { owners: ['MERCHANT'], description: 'A payment was paid by card.' },
  'payment.failed': { owners: ['MERCHANT'], description: 'A payment failed.' },
  'payment.canceled': { owners: ['MERCHANT'], description: 'A payment was canceled (by the merchant, or it expired).' },
  'payment.refunded': { owners: ['MERCHANT'], description: 'A payment was refunded, in full or in part.' },
  'bill.paid': { owners: ['BILLER'], description: 'A bill was paid (in full or in part): the payment advice.' },
  'settlement.ready': { owners: ['MERCHANT', 'BILLER', 'ISSUER'], description: 'A settlement statement of yours is ready: a window was cleared.' },
  'settlement.paid': { owners: ['MERCHANT', 'BILLER', 'ISSUER'], description: 'The payout of one of your settlement statements was confirmed by the gateway.' },
  'settlement.payout_failed': { owners: ['MERCHANT', 'BILLER', 'ISSUER'], description: 'The payout of one of your settlement statements failed; the amount is carried into your next statement.' },
  'webhook_endpoint.disabled': { owners: ['MERCHANT', 'BILLER', 'ISSUER'], description: 'One of your endpoints was disabled after its deliveries failed for the whole retry period.' },
};

/** Subscribes an endpoint to every type, including types added later. */
export const ALL_EVENT_TYPES = '*';

export function isKnownEventType(type: string): boolean {
  return Object.hasOwn(WEBHOOK_EVENT_TYPES, type);
}
