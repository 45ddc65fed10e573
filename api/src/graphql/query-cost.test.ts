import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { MaxTokensParserWLexer } from '@escape.tech/graphql-armor-max-tokens';
import { type DocumentNode, type FragmentDefinitionNode, type GraphQLError, type GraphQLSchema, Kind, type OperationDefinitionNode, parse, validate } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, measure } from './query-cost.js';
import { apiSchema } from '../schema.js';

/**
 * Our limits are our own code, measured in the same pass as the cost; this proves them no looser
 * than graphql-armor's rules at armor's defaults on the same documents (depth is looser by design:
 * docs/security.md#graphql-limits says why).
 */
let schema: GraphQLSchema;
beforeAll(async () => {
  schema = await apiSchema();
});

function oursRefuses(source: string): boolean {
  let document: DocumentNode;
  try {
    document = parse(source, { maxTokens: DEFAULT_LIMITS.maxTokens });
  } catch {
    return true;
  }
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  const fragments = Object.fromEntries(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
  try {
    measure(schema, operation, fragments, {}, DEFAULT_LIMITS);
    return false;
  } catch (err) {
    return (err as GraphQLError).extensions?.code === 'QUERY_TOO_COMPLEX';
  }
}

function armorRefuses(source: string): boolean {
  try {
    new MaxTokensParserWLexer(source, { n: 1_000 }).parseDocument();
  } catch {
    return true;
  }
  const rejected: GraphQLError[] = [];
  const options = { propagateOnRejection: false, onReject: [(_: unknown, e: GraphQLError) => rejected.push(e)] };
  validate(schema, parse(source), [maxAliasesRule({ n: 15, ...options }), maxDirectivesRule({ n: 50, ...options })]);
  return rejected.length > 0;
}

const fields = (n: number, field: (i: number) => string) => Array.from({ length: n }, (_, i) => field(i)).join(' ');

describe('limits no looser than graphql-armor’s defaults', () => {
  it.each([
    ['15 aliases', `{ ${fields(15, (i) => `a${i}: serverInfo { version }`)} }`],
    ['16 aliases', `{ ${fields(16, (i) => `a${i}: serverInfo { version }`)} }`],
    ['16 aliases of __typename (armor allows them; we count them)', `{ ${fields(16, (i) => `t${i}: __typename`)} }`],
    ['8 aliases in a fragment spread twice', `{ ...A s: serverInfo { ...V } } fragment A on Query { ${fields(8, (i) => `a${i}: serverInfo { version }`)} } fragment V on ServerInfo { ...W } fragment W on ServerInfo { version }`],
    ['8 aliases in a fragment spread twice, in two places', `{ x: serverInfo { ...A } y: serverInfo { ...A } } fragment A on ServerInfo { ${fields(8, (i) => `a${i}: version`)} }`],
    ['50 directives', `{ ${fields(50, () => '__typename @include(if: true)')} }`],
    ['51 directives', `{ ${fields(51, () => '__typename @include(if: true)')} }`],
    ['26 directives in a fragment spread twice', `{ a: serverInfo { ...D } b: serverInfo { ...D } } fragment D on ServerInfo { ${fields(26, () => 'version @skip(if: false)')} }`],
    ['51 directives on spreads of one fragment', `{ serverInfo { ${fields(51, () => '...V @include(if: true)')} } } fragment V on ServerInfo { version }`],
    ['1,000 tokens', `{ ${'__typename '.repeat(998)}}`],
    ['1,001 tokens', `{ ${'__typename '.repeat(999)}}`],
  ])('%s: refused by us wherever armor refuses it', (_name, source) => {
    if (armorRefuses(source)) expect(oursRefuses(source)).toBe(true);
  });

  it('the table has cases armor refuses, so the comparison is not empty', () => {
    expect(armorRefuses(`{ ${fields(16, (i) => `a${i}: serverInfo { version }`)} }`)).toBe(true);
    expect(armorRefuses(`{ ${fields(51, () => '__typename @include(if: true)')} }`)).toBe(true);
    expect(armorRefuses(`{ ${'__typename '.repeat(999)}}`)).toBe(true);
  });
});
