import { GraphQLError } from 'graphql';
import { quoteInput } from './errors.js';

/**
 * Global object ids (DESIGN.md §4): opaque to clients, they carry the type so `node(id)` can find
 * any object and a merchant's payment id can never be passed off as another type's id.
 */
export function toGlobalId(type: string, id: string): string {
  return Buffer.from(`${type}:${id}`, 'utf8').toString('base64url');
}

/** Decodes a global id; `expected` refuses an id of another type. Bad ids are BAD_USER_INPUT. */
export function fromGlobalId(globalId: string, expected?: string): { type: string; id: string } {
  const decoded = /^[A-Za-z0-9_-]{1,200}$/.test(globalId) ? Buffer.from(globalId, 'base64url').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const type = decoded.slice(0, colon);
  const id = decoded.slice(colon + 1);
  if (colon <= 0 || !id || (expected && type !== expected)) {
    throw new GraphQLError(expected ? `${quoteInput(globalId)} is not a ${expected} id` : `${quoteInput(globalId)} is not a valid id`, {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  return { type, id };
}
