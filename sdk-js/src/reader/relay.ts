import type { OneCardClient } from '../client.js';
import { CardSessionMessageDocument } from '../generated/graphql.js';
import type { SendMessage } from './reader-agent.js';

/**
 * A {@link ReaderAgent}'s `send` that relays each signed message through an API client (the app that
 * holds the OAuth token) with the typed `cardSessionMessage` mutation. It is not a money mutation: a
 * lost message is not sent again by the client (the session's numbered messages decide what happens).
 *
 * @example
 * ```ts
 * const agent = new ReaderAgent({ deviceKey, nationalCertificatePem, cityCertificatePem, transport, send: cardSessionRelay(onecard) });
 * ```
 */
export function cardSessionRelay(client: Pick<OneCardClient, 'execute'>): SendMessage {
  return async (message) => (await client.execute(CardSessionMessageDocument, { input: message })).cardSessionMessage;
}
