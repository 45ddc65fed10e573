import fs from 'node:fs/promises';
import path from 'node:path';
import {
  astFromValue,
  type GraphQLArgument,
  type GraphQLEnumType,
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLInputObjectType,
  type GraphQLInputType,
  type GraphQLInterfaceType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLScalarType,
  type GraphQLSchema,
  type GraphQLType,
  type GraphQLUnionType,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  isUnionType,
  lexicographicSortSchema,
  print,
} from 'graphql';

/*
 * docs/api-reference.md, generated from the schema's descriptions: `referenceMarkdown(schema)` is a
 * pure function of the schema; the CLI writes or checks the file (after `npm run build`):
 *
 *   onecard schema reference --write   # writes docs/api-reference.md (npm run docs:reference)
 *   onecard schema reference --check   # exit code 1 when the file is stale (part of npm run schema:check)
 *   onecard schema reference           # prints it
 *
 * Everything is in lexicographic order (as schema/schema.graphql), so the output only changes when
 * the schema does. Anchors follow GitHub's heading slugs, duplicates included.
 */

/** How to regenerate the file; also in the file's header and the test's failure message. */
export const REGENERATE_COMMAND = 'npm run docs:reference';

/** Where the reference lives, from the repository root. */
export const REFERENCE_FILE = 'docs/api-reference.md';

const SECTIONS = ['Queries', 'Mutations', 'Objects', 'Input objects', 'Enums', 'Scalars', 'Interfaces', 'Unions'] as const;
type Section = (typeof SECTIONS)[number];

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces to `-`; `-1`, `-2` … on repeats. */
class Slugger {
  private readonly occurrences = new Map<string, number>();

  slug(heading: string): string {
    const base = heading
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    let slug = base;
    // As GitHub does: a generated `x-1` may itself be taken by a heading literally named so.
    while (this.occurrences.has(slug)) {
      const n = this.occurrences.get(base)! + 1;
      this.occurrences.set(base, n);
      slug = `${base}-${n}`;
    }
    this.occurrences.set(slug, 0);
    return slug;
  }
}

/** Escapes Markdown outside code spans; keeps `code` as written. `|` is escaped everywhere (GFM tables). */
function md(text: string, inTable = false): string {
  const out: string[] = [];
  const re = /(`+)([\s\S]*?[^`])\1(?!`)/g;
  let last = 0;
  const prose = (s: string) => s.replace(/\\/g, '\\\\').replace(/([*_<>[\]])/g, '\\$1');
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push(prose(text.slice(last, m.index)), m[0]);
    last = m.index + m[0].length;
  }
  out.push(prose(text.slice(last)));
  let result = out.join('');
  if (inTable) result = result.replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
  return result;
}

function describe(description: string | null | undefined, inTable = false): string {
  const text = description?.trim();
  return text ? md(text, inTable) : '';
}

function byName<T extends { name: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function sectionOf(type: GraphQLNamedType, schema: GraphQLSchema): Section | null {
  if (isIntrospectionType(type) || isSpecifiedScalarType(type)) return null;
  if (type === schema.getQueryType() || type === schema.getMutationType() || type === schema.getSubscriptionType()) return null;
  if (isObjectType(type)) return 'Objects';
  if (isInputObjectType(type)) return 'Input objects';
  if (isEnumType(type)) return 'Enums';
  if (isScalarType(type)) return 'Scalars';
  if (isInterfaceType(type)) return 'Interfaces';
  if (isUnionType(type)) return 'Unions';
  return null;
}

interface Entry {
  /** The heading text, e.g. `Query.card` or `Card`. */
  heading: string;
  /** Its anchor, without `#`. */
  anchor: string;
  /** The name shown in the index. */
  label: string;
}

/** The API reference of a schema, as GitHub-flavoured Markdown. Pure: the same schema gives the same text. */
export function referenceMarkdown(input: GraphQLSchema): string {
  const schema = lexicographicSortSchema(input);
  const query = schema.getQueryType();
  const mutation = schema.getMutationType();
  const types = byName(Object.values(schema.getTypeMap()));

  // Anchors in document order, as GitHub numbers repeated ones.
  const slugger = new Slugger();
  const title = 'OneCard API reference';
  slugger.slug(title);
  slugger.slug('Index');
  const sectionAnchor = new Map<Section, string>();
  const entries = new Map<Section, Entry[]>();
  const typeAnchor = new Map<string, string>();
  for (const section of SECTIONS) {
    const list: Entry[] = [];
    const add = (heading: string, label: string) => list.push({ heading, label, anchor: '' });
    if (section === 'Queries' && query) for (const f of byName(Object.values(query.getFields()))) add(`${query.name}.${f.name}`, f.name);
    else if (section === 'Mutations' && mutation) for (const f of byName(Object.values(mutation.getFields()))) add(`${mutation.name}.${f.name}`, f.name);
    else for (const t of types) if (sectionOf(t, schema) === section) add(t.name, t.name);
    if (list.length === 0) continue;
    sectionAnchor.set(section, slugger.slug(section));
    for (const entry of list) {
      entry.anchor = slugger.slug(entry.heading);
      if (section !== 'Queries' && section !== 'Mutations') typeAnchor.set(entry.heading, entry.anchor);
    }
    entries.set(section, list);
  }

  /** A type as written in SDL, linked to its entry when it has one. */
  const typeRef = (type: GraphQLType): string => {
    const anchor = typeAnchor.get(getNamedType(type).name);
    return anchor ? `[\`${String(type)}\`](#${anchor})` : `\`${String(type)}\``;
  };
  const defaultOf = (arg: GraphQLArgument | GraphQLInputField): string => {
    if (arg.defaultValue === undefined) return '';
    const ast = astFromValue(arg.defaultValue, arg.type);
    return ast ? `\`${print(ast)}\`` : '';
  };
  const deprecation = (item: { deprecationReason?: string | null }): string =>
    item.deprecationReason != null ? ` **Deprecated:** ${describe(item.deprecationReason, true) || 'no longer supported.'}` : '';

  /** Rows for the arguments of a root field; input objects are expanded to their fields (`input.lines[].account`), a type once per path. */
  const argumentRows = (args: readonly GraphQLArgument[]): string[] => {
    const rows: string[] = [];
    const walk = (name: string, item: GraphQLArgument | GraphQLInputField, seen: ReadonlySet<string>) => {
      rows.push(`| \`${name}\` | ${typeRef(item.type)} | ${defaultOf(item)} | ${describe(item.description, true)}${deprecation(item)} |`);
      const named = getNamedType(item.type);
      if (!isInputObjectType(named) || seen.has(named.name)) return;
      const list = String(item.type).replace(/!$/, '').startsWith('[') ? '[]' : '';
      const inner = new Set(seen).add(named.name);
      for (const field of Object.values(named.getFields())) walk(`${name}${list}.${field.name}`, field, inner);
    };
    for (const arg of args) walk(arg.name, arg, new Set());
    return rows;
  };
  const argumentTable = (args: readonly GraphQLArgument[]): string[] =>
    args.length ? ['| Argument | Type | Default | Description |', '| --- | --- | --- | --- |', ...argumentRows(args), ''] : [];

  const fieldTable = (fields: readonly GraphQLField<unknown, unknown>[]): string[] => {
    if (!fields.length) return [];
    const rows = fields.map((f) => {
      const args = f.args.map((a) => {
        const def = defaultOf(a);
        return `<br>\`${a.name}\`: ${typeRef(a.type)}${def ? ` = ${def}` : ''}${a.description ? ` — ${describe(a.description, true)}` : ''}${deprecation(a)}`;
      });
      return `| \`${f.name}\` | ${typeRef(f.type)} | ${describe(f.description, true)}${deprecation(f)}${args.length ? `<br>**Arguments:**${args.join('')}` : ''} |`;
    });
    return ['| Field | Type | Description |', '| --- | --- | --- |', ...rows, ''];
  };

  const paragraph = (description: string | null | undefined): string[] => {
    const text = describe(description);
    return text ? [text, ''] : [];
  };

  const rootField = (root: GraphQLObjectType, field: GraphQLField<unknown, unknown>): string[] => [
    `### ${root.name}.${field.name}`,
    '',
    ...paragraph(field.description),
    ...(field.deprecationReason != null ? [`**Deprecated:** ${describe(field.deprecationReason) || 'no longer supported.'}`, ''] : []),
    `**Returns** ${typeRef(field.type)}`,
    '',
    ...argumentTable(field.args),
  ];

  const typeBlock = (type: GraphQLNamedType): string[] => {
    const lines = [`### ${type.name}`, '', ...paragraph(type.description)];
    if (isObjectType(type) || isInterfaceType(type)) {
      const interfaces = (type as GraphQLObjectType | GraphQLInterfaceType).getInterfaces();
      if (interfaces.length) lines.push(`**Implements** ${interfaces.map(typeRef).join(', ')}`, '');
      if (isInterfaceType(type)) {
        const { objects, interfaces: subInterfaces } = schema.getImplementations(type);
        const implementers = byName([...objects, ...subInterfaces]);
        if (implementers.length) lines.push(`**Implemented by** ${implementers.map(typeRef).join(', ')}`, '');
      }
      lines.push(...fieldTable(Object.values(type.getFields())));
    } else if (isInputObjectType(type)) {
      const fields = Object.values((type as GraphQLInputObjectType).getFields());
      if (fields.length) {
        lines.push('| Field | Type | Default | Description |', '| --- | --- | --- | --- |');
        for (const f of fields) lines.push(`| \`${f.name}\` | ${typeRef(f.type as GraphQLInputType)} | ${defaultOf(f)} | ${describe(f.description, true)}${deprecation(f)} |`);
        lines.push('');
      }
    } else if (isEnumType(type)) {
      lines.push('| Value | Description |', '| --- | --- |');
      for (const v of (type as GraphQLEnumType).getValues()) lines.push(`| \`${v.name}\` | ${describe(v.description, true)}${deprecation(v)} |`);
      lines.push('');
    } else if (isScalarType(type)) {
      const url = (type as GraphQLScalarType).specifiedByURL;
      if (url) lines.push(`Specified by <${url}>.`, '');
    } else if (isUnionType(type)) {
      lines.push(`**Possible types** ${(type as GraphQLUnionType).getTypes().map(typeRef).join(', ')}`, '');
    }
    return lines;
  };

  // Markdown as written; only a description from the schema is escaped.
  const intro: Partial<Record<Section, string>> = {
    Queries: describe(query?.description) || 'The fields of the `Query` root type. Each says who may call it; without an OAuth access token ([auth.md](auth.md)) only the public ones answer.',
    Mutations:
      describe(mutation?.description) ||
      'The fields of the `Mutation` root type. Each takes one argument `input` (its fields are expanded below) and returns a payload with the object, null when refused, and `userErrors` ([conventions](api-conventions.md#mutations-input-payload-usererrors)).',
    Objects: 'Output types. Those implementing `Node` have a global `id` that `node(id)` fetches.',
    'Input objects': 'The types of mutation inputs and filter arguments.',
    Enums: 'Closed lists of values, with what each means.',
    Scalars: 'Custom scalars; `String`, `Int`, `Float`, `Boolean` and `ID` are GraphQL’s own. Amounts are `MinorUnits` (integers, fen for CNY), never floats.',
    Interfaces: 'Types that several object types implement.',
    Unions: 'Types that are one of several object types.',
  };

  const out: string[] = [
    `# ${title}`,
    '',
    `<!-- Generated from the GraphQL schema by api/src/graphql/reference-doc.ts; do not edit. Regenerate: ${REGENERATE_COMMAND} -->`,
    '',
    'Every query, mutation and type of the OneCard GraphQL API, with the descriptions the schema carries (the SDL is `schema/schema.graphql`).',
    'The rules every part follows (global ids, `DateTime`, `MinorUnits` and `Money`, connections, mutation payloads, idempotency, errors) are in [api-conventions.md](api-conventions.md);',
    'the error codes in [errors.md](errors.md).',
    '',
    `## Index`,
    '',
  ];
  for (const [section, list] of entries) {
    out.push(`- [${section}](#${sectionAnchor.get(section)}) (${list.length}): ${list.map((e) => `[${e.label}](#${e.anchor})`).join(', ')}`);
  }
  out.push('');
  for (const [section, list] of entries) {
    out.push(`## ${section}`, '', intro[section] ?? '', '');
    if (section === 'Queries' && query) for (const f of byName(Object.values(query.getFields()))) out.push(...rootField(query, f));
    else if (section === 'Mutations' && mutation) for (const f of byName(Object.values(mutation.getFields()))) out.push(...rootField(mutation, f));
    else for (const entry of list) out.push(...typeBlock(schema.getType(entry.heading)!));
  }
  while (out.at(-1) === '') out.pop();
  return `${out.join('\n')}\n`;
}

/** The repository's docs/api-reference.md, from this module's place (api/src/graphql or api/dist/graphql). */
export function referenceFile(): string {
  return path.resolve(import.meta.dirname, '../../..', REFERENCE_FILE);
}

/**
 * Writes (`write`), checks (`check`: 1 when stale) or prints the reference of `schema`; the exit
 * code. `onecard schema reference` calls it with the API schema, assembled at the top (api/src/schema.ts).
 */
export async function syncReference(schema: GraphQLSchema, mode: 'write' | 'check' | 'print'): Promise<number> {
  const text = referenceMarkdown(schema);
  const file = referenceFile();
  if (mode === 'write') {
    await fs.writeFile(file, text);
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
    return 0;
  }
  if (mode === 'check') {
    const current = await fs.readFile(file, 'utf8').catch(() => '');
    if (current === text) {
      console.log(`${REFERENCE_FILE} is up to date`);
      return 0;
    }
    console.error(`${REFERENCE_FILE} is stale: run \`${REGENERATE_COMMAND}\` and commit it`);
    return 1;
  }
  process.stdout.write(text);
  return 0;
}
