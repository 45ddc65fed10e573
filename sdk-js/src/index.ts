/**
 * The OneCard JS SDK.
 *
 * @packageDocumentation
 */
export { OneCardClient, OneCardError } from './client.js';
export { finishSignIn, startSignIn } from './sign-in.js';
export type { AccessToken, PendingSignIn, SignInOptions } from './sign-in.js';
export type { GraphQLErrorEntry, OneCardClientOptions, OperationArgs, PrincipalKind, RequestOptions, Viewer } from './client.js';
// Typed operations: documents, result and variables types generated from the schema (src/operations).
export * from './generated/graphql.js';
export { IDEMPOTENT_MUTATIONS } from './generated/idempotency.js';
export type { GraphQLDocument, OperationVariables, ResultOf, VariablesOf } from './documents.js';
export type { Connection, MutationResult, Succeeded, SucceededData, UserError, UserErrorOf } from './results.js';
export type { BillsResource, CardsResource, InputOf, MerchantsResource, PaymentsResource, ReadersResource, TopUpsResource, WebhooksResource } from './resources.js';
export type { RetryOptions } from './retry.js';
// Virtual cards (CPU e-purse, MIFARE Classic) and the transport readers talk to them through.
export { CardStateError } from './cards/card-bytes.js';
export { VirtualCardTransport, splitResponse } from './cards/card-transport.js';
export type { CardResponse, CardTransport, VirtualCardTransportOptions } from './cards/card-transport.js';
export {
  ALGORITHM_IDS,
  CITY_UNION_AID,
  DEFAULT_LOG_CAPACITY,
  DEFAULT_MAX_BALANCE,
  LOG_RECORD_LENGTH,
  PSE_NAME,
  StatusWord,
  TRANSACTION_TYPES,
  VirtualCpuCard,
  cityCodeOf,
} from './cards/virtual-cpu-card.js';
export type {
  CpuCardKey,
  CpuCardKeys,
  CpuCardProfile,
  CpuCardWithKeysOptions,
  IssueCpuCardOptions,
  PurseAlgorithm,
  PurseKind,
  PurseProofs,
  PurseState,
  TransactionProof,
  VirtualCpuCardRuntime,
  VirtualCpuCardState,
} from './cards/virtual-cpu-card.js';
export {
  M1CardError,
  M1_BLOCKS,
  M1_BLOCK_SIZE,
  M1_DEFAULT_ACCESS_BITS,
  M1_DEFAULT_KEY,
  M1_SECTORS,
  VirtualM1Card,
  decodeValueBlock,
  encodeValueBlock,
} from './cards/virtual-m1-card.js';
export type { CreateM1CardOptions, M1ErrorCode, M1KeyType, M1SectorKeys, M1Value, VirtualM1CardState } from './cards/virtual-m1-card.js';
export { DEFAULT_M1_PURSE_LAYOUT, creditM1Purse, debitM1Purse, formatM1Purse, m1PurseBlocks, readM1Purse, recoverM1Purse } from './cards/m1-purse.js';
export type { M1PurseCard, M1PurseLayout, M1PurseReading } from './cards/m1-purse.js';
// PC/SC readers (through the optional dependency `smartcard`), every command's answer made whole
// (61xx, 6Cxx, warnings); a card speaking T=0; a virtual card in vsmartcard's virtual reader (vpcd).
export { PcscCard, PcscReaders, PcscTimeoutError, PcscUnavailableError } from './reader/pcsc-reader.js';
export type { WaitForCardOptions } from './reader/pcsc-reader.js';
export { CardExchangeError, transmitWhole, wholeResponses, withLe } from './reader/status-words.js';
export type { RawTransmit } from './reader/status-words.js';
export { T0Card } from './cards/t0-card.js';
export type { ApduCard, T0CardOptions } from './cards/t0-card.js';
export { T0_ATR, T1_ATR, VPCD_DEFAULT_PORT, VpcdCard } from './cards/vpcd-card.js';
export type { VpcdCardOptions } from './cards/vpcd-card.js';
// M1 cards on contactless PC/SC readers (pseudo-APDUs), and a reader's firmware around a virtual M1 card.
export { PcscM1Card, PcscM1Error } from './reader/pcsc-m1.js';
export { M1_1K_ATR, M1_STATUS, VirtualM1Reader } from './cards/m1-pseudo-apdu.js';
// The reader agent: a certified reader's side of a card session.
export { CARD_SESSION_MESSAGE, HostMessageRefusedError, ReaderAgent, runM1Script } from './reader/reader-agent.js';
export { cardSessionRelay } from './reader/relay.js';
export type { CardSessionView, HostMessage, HostMessageRefusal, M1Card, M1ScriptOp, M1ScriptResult, ReaderAgentOptions, ReaderCommand, SendMessage, SessionReply } from './reader/reader-agent.js';
// Webhooks: verify what OneCard POSTs to your endpoints.
export * from './terminal/index.js';

export { WEBHOOK_EVENT_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, verifyWebhook } from './webhooks.js';
export type { WebhookEvent, WebhookVerification } from './webhooks.js';

export { QR_FRESH_SECONDS, QrScanner, createQrDeviceKey, drawQrCode, qrIssuerKeyId, signQrRideBatch } from './qr.js';
export type { QrDeviceKey, QrRetiredSigningCertificate, QrVerification, ScannedQrCode } from './qr.js';
export { qrSymbolOf, renderQrCode } from './qr-image.js';
export type { QrImageFormat, QrImageOptions, QrSymbol } from './qr-image.js';
