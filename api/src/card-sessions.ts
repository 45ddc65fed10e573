import { billPayment } from './bills/bill-payment-card-step.js';
import { findCardByAsn } from './cards/cards.service.js';
import type { TopUpLimits } from './config/config.js';
import { merchantPayment } from './payments/payment-card-step.js';
import { tillPurchase } from './payments/till-purchase.js';
import { type CardSessionEngine, createCardSessionEngine } from './readers/session/card-session.service.js';
import { lowBalanceObserver } from './topups/auto-top-up.js';
import { counterLoad } from './topups/counter-load.js';
import { loadPickup } from './topups/load-pickup.js';
import { pendingLoad, returnProvedValue } from './topups/pending-load.js';

/**
 * The composition root of card sessions: the purposes a session may serve, each declared by the
 * context that owns its business, handed to the engine (readers/session/), which imports none of
 * them. Order matters where two purposes open the same operation: a request naming a payment is a
 * payment before it is a bill payment, and one naming neither is a till purchase; a load naming
 * the pending loads to pick up is a pickup (which refuses a top-up named as well).
 */
export function cardSessionEngine(config: { topUpLimits: TopUpLimits }): CardSessionEngine {
  return createCardSessionEngine({
    purposes: [merchantPayment, billPayment, tillPurchase, loadPickup(config.topUpLimits), pendingLoad(config.topUpLimits), counterLoad],
    observers: [lowBalanceObserver(config.topUpLimits)],
    cardStatus: async (em, asn) => (await findCardByAsn(em, asn))?.status ?? null,
    returnProvedValue,
  });
}
