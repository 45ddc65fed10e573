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
      return { ...formatted, extensions };
    }
    const cause = unwrapResolverError(error);
    return {
      message: opts.development && cause instanceof Error ? cause.message : 'Internal server error',
      path: formatted.path,
      locations: formatted.locations,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}
