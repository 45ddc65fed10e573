// A GraphQL Code Generator plugin of the SDK's own: lists the schema's money mutations, those with an
// argument (in practice `input`) whose input type has an `idempotencyKey` field, so that the client
// can give them a key and retry them safely (docs/api-conventions.md#idempotency).
'use strict';

const { getNamedType, isInputObjectType } = require('graphql');

/** @type {import('@graphql-codegen/plugin-helpers').PluginFunction} */
function plugin(schema) {
  const mutation = schema.getMutationType();
  const entries = [];
  for (const field of Object.values(mutation ? mutation.getFields() : {})) {
    const args = field.args.filter((arg) => {
      const type = getNamedType(arg.type);
      return isInputObjectType(type) && 'idempotencyKey' in type.getFields();
    });
    if (args.length > 0) entries.push([field.name, args.map((arg) => arg.name).sort()]);
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = entries.map(([name, args]) => `  ${name}: [${args.map((a) => `'${a}'`).join(', ')}],`);
  return [
    '/**',
    ' * The money mutations of the schema: for each, the arguments whose input takes an `idempotencyKey`.',
    ' * The client gives them a key when the caller does not, and retries them with it.',
    ' */',
    'export const IDEMPOTENT_MUTATIONS: Readonly<Record<string, readonly string[]>> = {',
    ...lines,
    '};',
    '',
  ].join('\n');
}

module.exports = { plugin };
