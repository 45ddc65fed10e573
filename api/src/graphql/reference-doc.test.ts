import fs from 'node:fs';
import {
  buildSchema,
  type GraphQLSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isSpecifiedScalarType,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { REFERENCE_FILE, REGENERATE_COMMAND, referenceFile, referenceMarkdown } from './reference-doc.js';
import { apiSchema } from '../schema.js';

const described = (text: string | null | undefined) => typeof text === 'string' && text.trim() !== '';

/**
 * Schema coordinates (`Type`, `Type.field`, `Type.field(arg:)`, `Enum.VALUE`) without a description.
 * The root operation types themselves are left out: type-graphql gives them no description, and the
 * reference introduces them itself; their fields and arguments are checked like any other.
 */
function undescribed(schema: GraphQLSchema): string[] {
  const roots = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter(Boolean));
  const missing: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (isIntrospectionType(type) || isSpecifiedScalarType(type)) continue;
    if (!roots.has(type as never) && !described(type.description)) missing.push(type.name);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!described(field.description)) missing.push(`${type.name}.${field.name}`);
        for (const arg of field.args) if (!described(arg.description)) missing.push(`${type.name}.${field.name}(${arg.name}:)`);
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) if (!described(field.description)) missing.push(`${type.name}.${field.name}`);
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) if (!described(value.description)) missing.push(`${type.name}.${value.name}`);
    }
  }
  return missing.sort();
}

describe('schema descriptions', () => {
  it('every type, field, argument, input field and enum value of the API has a description', async () => {
    const missing = undescribed(await apiSchema());
    expect(missing, `${missing.length} schema elements have no description; add \`description\` to their decorator or registerEnumType's valuesConfig:\n${missing.join('\n')}`).toEqual([]);
  });

  it('the check finds what is missing', () => {
    const schema = buildSchema(`
      "Root." type Query { "A thing." thing(id: ID!): Thing }
      type Thing { "Its id." id: ID! name: String }
      "Kinds." enum Kind { "One." ONE TWO }
    `);
    expect(undescribed(schema)).toEqual(['Kind.TWO', 'Query.thing(id:)', 'Thing', 'Thing.name']);
  });
});

describe(REFERENCE_FILE, () => {
  it('is what the schema generates', async () => {
    const expected = referenceMarkdown(await apiSchema());
    const current = fs.existsSync(referenceFile()) ? fs.readFileSync(referenceFile(), 'utf8') : '';
    // Not toEqual on the text: a 4,000-line diff helps nobody; the command does.
    expect(current === expected, `${REFERENCE_FILE} is stale: run \`${REGENERATE_COMMAND}\` and commit it`).toBe(true);
  });
});

describe('referenceMarkdown', () => {
  const schema = buildSchema(`
    "Something with a global id." interface Node { "Global id." id: ID! }
    type Query {
      "One card." card("Its id." id: ID!): Card
      "Cards | all of them, with **stars** and <tags> kept as text." cards("Page size | 1 to 100." first: Int = 20): [Card!]!
    }
    type Mutation { "Issues a card." issueCard("The card." input: IssueCardInput!): Card }
    "A card." type Card implements Node { "Global id." id: ID! "Its status." status: CardStatus! "Purse, \`in <minor> units\`." balance: Int! }
    "A card to issue." input IssueCardInput { "Lines." lines: [LineInput!]! "The status." status: CardStatus = ACTIVE }
    "A line." input LineInput { "Minor units." amount: Int! "Nested again." next: LineInput }
    "Where a card stands." enum CardStatus { "In use." ACTIVE "Gone." LOST }
  `);
  const doc = referenceMarkdown(schema);
  const anchors = [...doc.matchAll(/^#{1,6} (.+)$/gm)].map((m) => m[1]);

  it('has the sections in order, each entry under a heading', () => {
    expect(anchors).toEqual(['OneCard API reference', 'Index', 'Queries', 'Query.card', 'Query.cards', 'Mutations', 'Mutation.issueCard', 'Objects', 'Card', 'Input objects', 'IssueCardInput', 'LineInput', 'Enums', 'CardStatus', 'Interfaces', 'Node']);
  });

  it('links every reference to an anchor that exists', () => {
    const slugs = new Set(anchors.map((h) => h.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-')));
    const links = [...doc.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
    expect(links.length).toBeGreaterThan(10);
    expect(links.filter((l) => !slugs.has(l))).toEqual([]);
    expect(doc).toContain('[Queries](#queries) (2): [card](#querycard), [cards](#querycards)');
    expect(doc).toContain('| `status` | [`CardStatus!`](#cardstatus) | Its status. |');
  });

  it('expands mutation inputs, nested ones once, with defaults', () => {
    expect(doc).toContain('| `input` | [`IssueCardInput!`](#issuecardinput) |  | The card. |');
    expect(doc).toContain('| `input.lines[].amount` | `Int!` |  | Minor units. |');
    expect(doc).toContain('| `input.lines[].next` | [`LineInput`](#lineinput) |  | Nested again. |');
    expect(doc).not.toContain('input.lines[].next.amount');
    expect(doc).toContain('| `input.status` | [`CardStatus`](#cardstatus) | `ACTIVE` | The status. |');
    expect(doc).toContain('| `first` | `Int` | `20` | Page size \\| 1 to 100. |');
  });

  it('lists enum values with their descriptions, and interface implementations', () => {
    expect(doc).toContain('| `ACTIVE` | In use. |');
    expect(doc).toContain('**Implemented by** [`Card`](#card)');
  });

  it('escapes Markdown in descriptions but keeps code spans', () => {
    expect(doc).toContain('\nCards | all of them, with \\*\\*stars\\*\\* and \\<tags\\> kept as text.\n');
    expect(doc).toContain('Purse, `in <minor> units`.');
  });

  it('is deterministic: the order of the schema’s definitions does not matter', () => {
    const reordered = buildSchema(`
      "Where a card stands." enum CardStatus { "In use." ACTIVE "Gone." LOST }
      "A line." input LineInput { "Nested again." next: LineInput "Minor units." amount: Int! }
      "A card to issue." input IssueCardInput { "The status." status: CardStatus = ACTIVE "Lines." lines: [LineInput!]! }
      "A card." type Card implements Node { "Purse, \`in <minor> units\`." balance: Int! "Its status." status: CardStatus! "Global id." id: ID! }
      type Mutation { "Issues a card." issueCard("The card." input: IssueCardInput!): Card }
      type Query {
        "Cards | all of them, with **stars** and <tags> kept as text." cards("Page size | 1 to 100." first: Int = 20): [Card!]!
        "One card." card("Its id." id: ID!): Card
      }
      "Something with a global id." interface Node { "Global id." id: ID! }
    `);
    expect(referenceMarkdown(reordered)).toBe(doc);
  });

  it('numbers repeated anchors as GitHub does', () => {
    const clash = buildSchema(`
      type Query { "A." queryThing: QueryThing "B." thing: QueryThing }
      "A type whose heading slugs like a query's." type QueryThing { "X." x: Int }
    `);
    const text = referenceMarkdown(clash);
    expect(text).toContain('[thing](#querything)');
    expect(text).toContain('[QueryThing](#querything-1)');
    expect(text).toContain('[`QueryThing`](#querything-1)');
  });
});
