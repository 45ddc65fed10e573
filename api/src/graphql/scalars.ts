import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

import { DateTimeResolver } from 'graphql-scalars';
import { quoteInput } from './errors.js';

export { CurrencyResolver as CurrencyScalar } from 'graphql-scalars';

/** graphql-scalars' parse, refusing with a message that quotes only a prefix of the input (its own quotes it whole). */
function parsedDateTime(parse: () => Date, input: unknown): Date {
  try {
    return parse();
  } catch {
    throw new GraphQLError(`DateTime must be an RFC 3339 date-time with an offset, e.g. "2026-11-25T08:00:00Z"; got ${quoteInput(input)}`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
}

/**
 * graphql-scalars' DateTime, serialising any instant the code hands it: a Date, or the text
 * PostgreSQL returns for a timestamptz in raw queries ("2026-11-25 13:53:02.1+00"), always as an
 * ISO-8601 UTC string.
 */
export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: DateTimeResolver.description,
  specifiedByURL: DateTimeResolver.specifiedByURL,
  serialize(value) {
    const date = value instanceof Date ? value : typeof value === 'string' || typeof value === 'number' ? new Date(value) : undefined;
    if (!date || Number.isNaN(date.getTime())) throw new GraphQLError(`DateTime cannot represent ${quoteInput(value)}`);
    return date.toISOString();
  },
  parseValue: (value) => parsedDateTime(() => DateTimeResolver.parseValue(value) as Date, value),
  parseLiteral: (ast, variables) => parsedDateTime(() => DateTimeResolver.parseLiteral(ast, variables) as Date, ast.kind === Kind.STRING ? ast.value : ast.kind),
});

function toMinorUnits(value: unknown): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new GraphQLError(`MinorUnits must be a whole number of minor units within ±${Number.MAX_SAFE_INTEGER}; got ${quoteInput(value)}`, {
    extensions: { code: 'BAD_USER_INPUT' },
  });
}

/**
 * An amount in minor units (fen for CNY) as a JSON integer, never a float or a string
 * (DESIGN.md §3). Resolvers see a `bigint`.
 */
export const MinorUnitsScalar = new GraphQLScalarType<bigint, number>({
  name: 'MinorUnits',
  description: 'An amount in minor units of its currency (fen for CNY): a JSON integer within ±(2^53 - 1). Never a float.',
  serialize(value) {
    const n = typeof value === 'bigint' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new GraphQLError('MinorUnits cannot represent this amount safely in JSON');
    return n;
  },
  parseValue: toMinorUnits,
  parseLiteral(ast) {
    if (ast.kind !== Kind.INT) throw new GraphQLError('MinorUnits must be an integer literal', { extensions: { code: 'BAD_USER_INPUT' } });
    const n = BigInt(ast.value);
    if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) return toMinorUnits(ast.value);
    return n;
  },
});
