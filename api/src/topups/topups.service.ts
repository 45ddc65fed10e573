/**
 * The top-ups context's service, as other modules call it. The work lives in files by concern:
 * - top-up-rows.ts: a top-up as stored, and its reads
 * - top-up-moves.ts: the lifecycle (TOP_UP_TRANSITIONS, the machine, moveTo) and starting a refund
 * - top-up-orders.ts: orders from the app, the counter and the auto top-up, sent to the gateway
 * - gateway-answers.ts: what the gateway says of an intent or a refund, applied forward only
 * - top-up-refunds.ts: refunds through the gateway
 * - pending-load-records.ts: pending loads from a replaced card or a merchant's refund, spending a top-up
 */
export { applyIntent, applyRefund } from './gateway-answers.js';
export { recordPendingLoad, recordTransferLoad, movePendingLoads, spendTopUp, BALANCE_TRANSFER_CLIENT, REFUND_CLIENT } from './pending-load-records.js';
export { moveTo, TOP_UP_TRANSITIONS, topUpMachine } from './top-up-moves.js';
export { createTopUp, createWalletTopUp, recordAutoTopUp, submitToGateway, AUTO_TOP_UP_CLIENT, type CreateTopUpInput } from './top-up-orders.js';
export { refundTopUp, submitRefund } from './top-up-refunds.js';
export {
  clientSecretSealedOf,
  findTopUpFor,
  listTopUpsOfCard,
  listTopUpsOfWallet,
  maskCardNumber,
  pendingLoadOfCard,
  topUpById,
  topUpGlobalId,
  topUpHistory,
  type LoadClaim,
  type TopUpOrigin,
  type TopUpRow,
  type TopUpStatus,
} from './top-up-rows.js';
