/**
 * The OneCard JS SDK for browsers (`@onecard/sdk/browser`): the API client only, on WebCrypto and
 * `fetch`, with no `node:` import anywhere in its module graph. OAuth (a cardholder signed in with
 * PKCE: `startSignIn`/`finishSignIn`, DPoP with a WebCrypto key pair), every typed operation, the resource helpers,
 * pagination, idempotency keys and safe retries are the same as the Node entry point's.
 *
 * Not here, because they belong on a server: webhook verification (it needs the endpoint's signing
 * secret) and the reader agent and virtual cards (a reader's device key must not live in a page).
 *
 * @packageDocumentation
 */
export { OneCardClient, OneCardError } from './client.js';
export { finishSignIn, startSignIn } from './sign-in.js';
export type { AccessToken, PendingSignIn, SignInOptions } from './sign-in.js';
export type { GraphQLErrorEntry, OneCardClientOptions, OperationArgs, PrincipalKind, RequestOptions, Viewer } from './client.js';
export * from './generated/graphql.js';
export { IDEMPOTENT_MUTATIONS } from './generated/idempotency.js';
export type { GraphQLDocument, OperationVariables, ResultOf, VariablesOf } from './documents.js';
export type { BillsResource, CardsResource, InputOf, MerchantsResource, PaymentsResource, ReadersResource, TopUpsResource, WebhooksResource } from './resources.js';
export type { Connection, MutationResult, Succeeded, SucceededData, UserError, UserErrorOf } from './results.js';
export type { RetryOptions } from './retry.js';
// QR ride codes as images for a web app (qrcode is loaded on first use: its own chunk in a bundle).
export { qrSymbolOf, renderQrCode } from './qr-image.js';
export type { QrImageFormat, QrImageOptions, QrSymbol } from './qr-image.js';
