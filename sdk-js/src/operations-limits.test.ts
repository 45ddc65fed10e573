/**
 * Every operation of the SDK, hand-written or generated, is one the API accepts: within its token
 * limit (as parsed) and its depth and cost limits (as measured before it runs, at the default page
 * size), so a generated default selection cannot be one the server refuses as QUERY_TOO_COMPLEX.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, Kind, parse, print, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, measure } from '../../api/src/graphql/query-cost.js';
import * as generated from './generated/graphql.js';

const schema = buildSchema(fs.readFileSync(path.resolve(import.meta.dirname, '../../schema/schema.graphql'), 'utf8'));
const documents = Object.entries(generated).filter((entry): entry is [string, DocumentNode] => entry[0].endsWith('Document') && (entry[1] as DocumentNode).kind === Kind.DOCUMENT);

/** What the server does with the text the client sends: parse it under the token limit, measure its operation. */
function accepted(document: DocumentNode) {
  const sent = parse(print(document), { maxTokens: DEFAULT_LIMITS.maxTokens });
  const fragments = Object.fromEntries(sent.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
  const operation = sent.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  return measure(schema, operation, fragments, {});
}

describe('the API accepts every SDK operation', () => {
  it('there is one typed document per operation', () => {
    expect(documents.length).toBeGreaterThan(85);
  });

  it.each(documents)('%s', (_name, document) => {
    const cost = accepted(document);
    expect(cost.depth).toBeLessThanOrEqual(DEFAULT_LIMITS.maxDepth);
    expect(cost.cost).toBeLessThanOrEqual(DEFAULT_LIMITS.maxCost);
  });

  it('a selection past the limits is refused here as the server would (the check can fail)', () => {
    const tooDeep = parse('query { payments { edges { node { refunds { amount { amount } } } } } payments2: payments { edges { node { id } } } }');
    expect(() => measure(schema, tooDeep.definitions[0] as OperationDefinitionNode, {}, {}, { ...DEFAULT_LIMITS, maxDepth: 4 })).toThrow(/depth/);
  });
});
