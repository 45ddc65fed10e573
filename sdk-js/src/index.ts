/**
 * The OneCard JS SDK.
 *
 * @packageDocumentation
 */
export { OneCardClient, OneCardError } from './client.js';
export type { GraphQLErrorEntry, OneCardClientOptions, PrincipalKind, Viewer } from './client.js';
