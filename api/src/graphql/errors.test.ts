import { GraphQLError } from 'graphql';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { testConfig } from '../../test/support/server.js';
import { Metrics } from '../http/metrics.js';
import { createApolloServer } from '../apollo.js';
import { errorFormatter } from './errors.js';

const log = pino({ level: 'silent' });
const sqlFailure = Object.assign(new Error('duplicate key value violates unique constraint "ledger_account_code_key" (insert into ledger_account ...)'), {
  stack: 'Error: ...\n    at post (/srv/api/dist/ledger/ledger.service.js:120:11)',
});

describe('error formatting', () => {
  it('hides an unexpected error’s message, SQL and stack outside development', () => {
    const formatted = errorFormatter({ development: false })({ message: sqlFailure.message, path: ['x'], extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['at post'] } }, sqlFailure);
    expect(formatted).toEqual({ message: 'Internal server error', path: ['x'], locations: undefined, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  });

  it('shows the message (never the stack) in development', () => {
    const formatted = errorFormatter({ development: true })({ message: sqlFailure.message, extensions: { code: 'INTERNAL_SERVER_ERROR' } }, sqlFailure);
    expect(formatted.message).toContain('duplicate key');
    expect(JSON.stringify(formatted)).not.toContain('ledger.service.js');
  });

  it('keeps a public error as it is, without internal extensions', () => {
    const error = new GraphQLError('Missing scope: payments:write', { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
    expect(errorFormatter({ development: false })({ message: error.message, extensions: { code: 'FORBIDDEN', http: { status: 403 }, stacktrace: ['x'] } }, error)).toEqual({
      message: 'Missing scope: payments:write',
      extensions: { code: 'FORBIDDEN' },
    });
  });
});

describe('introspection switch', () => {
  it.each([
    [true, undefined],
    [false, 'GRAPHQL_VALIDATION_FAILED'],
  ])('introspection=%s', async (introspection, errorCode) => {
    const apollo = await createApolloServer({ config: { ...testConfig(), introspection }, log, metrics: new Metrics() });
    try {
      const res = await apollo.executeOperation({ query: '{ __schema { queryType { name } } }' });
      const result = res.body.kind === 'single' ? res.body.singleResult : undefined;
      expect(result?.errors?.[0]?.extensions?.code).toBe(errorCode);
      // No "did you mean" hints that reveal the schema when introspection is off.
      const typo = await apollo.executeOperation({ query: '{ serverInf { version } }' });
      const message = typo.body.kind === 'single' ? typo.body.singleResult.errors?.[0]?.message : '';
      expect(message?.includes('Did you mean')).toBe(introspection);
    } finally {
      await apollo.stop();
    }
  });
});
