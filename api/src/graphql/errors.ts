import { unwrapResolverError } from '@apollo/server/errors';
import type { GraphQLFormattedError } from 'graphql';

/** Error codes a client may see as they are; anything else is an internal error. */
const PUBLIC_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'QUERY_TOO_COMPLEX',
  'THROTTLED',
  'IDEMPOTENCY_KEY_REUSED',
  'IDEMPOTENCY_CONFLICT',
]);

/** The longest input an error message quotes: enough to recognise it, too little to amplify it. */
export const MAX_QUOTED_INPUT = 32;
/** The longest message of any GraphQL error, whatever produced it (graphql-js quotes values whole). */
export const MAX_ERROR_MESSAGE = 500;

/**
 * Bad input as an error message quotes it: as JSON, at most MAX_QUOTED_INPUT characters of it, so
 * that a 300 KB id sent to 15 aliases answers 15 short errors, not 4.5 MB.
 */
export function quoteInput(value: unknown, max = MAX_QUOTED_INPUT): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** A message cut to MAX_ERROR_MESSAGE characters. */
export function boundedMessage(message: string): string {
  return message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}…` : message;
}

/** The codes a client may see (docs/errors.md lists each). */
export const publicErrorCodes = (): readonly string[] => [...PUBLIC_CODES];

export function isPublicCode(code: unknown): boolean {
  return typeof code === 'string' && PUBLIC_CODES.has(code);
}

/**
 * One error shape for the API: public errors keep their message and code; anything unexpected
 * becomes INTERNAL_SERVER_ERROR, and its message (which may hold SQL) and stack stay in the log
 * (see the error-logging plugin), except that development shows the message.
 */
export function errorFormatter(opts: { development: boolean }) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    if (isPublicCode(formatted.extensions?.code)) {
      const { stacktrace: _stack, http: _http, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, message: boundedMessage(formatted.message), extensions };
    }
    const cause = unwrapResolverError(error);
    return {
      message: opts.development && cause instanceof Error ? boundedMessage(cause.message) : 'Internal server error',
      path: formatted.path,
      locations: formatted.locations,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}
