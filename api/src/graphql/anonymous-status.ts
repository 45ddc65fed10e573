import type { ApolloServerPlugin } from '@apollo/server';
import { type DocumentNode, isNonNullType, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { GraphQLContext } from './context.js';

/** Where the docs explain the one case in which an anonymous caller loses the public fields too. */
export const NON_NULL_ROOT_DOC = 'docs/api-conventions.md#anonymous-requests';

/**
 * What a refused root field that cannot be null tells its anonymous caller: GraphQL's null
 * propagation then nulls all of `data`, the public fields asked beside it included (the lists are
 * non-null so that a signed-in caller never handles a null list; the schema keeps them so).
 */
export function nonNullRootRefusal(field: string): string {
  return `Authentication required: send an OAuth access token. \`${field}\` cannot be null, so refusing it nulls the whole answer, public fields included: ask public fields (serverInfo, cities, …) in a request of their own, or sign in (${NON_NULL_ROOT_DOC})`;
}

/** The root fields an operation asks for, by response key (alias or name), fragments included. */
function rootFields(operation: OperationDefinitionNode, document: DocumentNode): Map<string, string> {
  const fields = new Map<string, string>();
  const visit = (set: SelectionSetNode): void => {
    for (const s of set.selections) {
      if (s.kind === 'Field') fields.set(s.alias?.value ?? s.name.value, s.name.value);
      else if (s.kind === 'InlineFragment') visit(s.selectionSet);
      else {
        const fragment = document.definitions.find((d) => d.kind === 'FragmentDefinition' && d.name.value === s.name.value);
        if (fragment?.kind === 'FragmentDefinition') visit(fragment.selectionSet);
      }
    }
  };
  visit(operation.selectionSet);
  return fields;
}

/**
 * The HTTP status of a request with fields refused for want of a token. The auth checker refuses
 * each protected field on its own (UNAUTHENTICATED, with its path, its value null), so the public
 * fields beside it still answer; the request then answers 200 like any partial result. Only when
 * nothing answered is it 401 with WWW-Authenticate, as for a request of protected fields only.
 * A root field answered if its value is not null, or it is null with no error under it (viewer).
 * A refused root field that cannot be null nulls all of `data`: its error says so and what to do.
 */
export function anonymousStatusPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, schema, document, operation }) {
          if (response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          const { data, errors } = result;
          if (!errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED')) return;
          const answered = !!data && Object.entries(data).some(([key, value]) => value !== null || !errors.some((e) => e.path?.[0] === key));
          if (answered) {
            if (response.http.status === 401) response.http.status = 200;
            response.http.headers.delete('www-authenticate');
            return;
          }
          response.http.status = 401;
          response.http.headers.set('www-authenticate', 'Bearer realm="OneCard"');
          // Only queries have public fields to lose (no mutation answers without a token).
          if (data !== null || operation?.operation !== 'query' || !document) return;
          const root = schema.getQueryType();
          const asked = rootFields(operation, document);
          result.errors = errors.map((e) => {
            const key = e.path?.length === 1 ? e.path[0] : undefined;
            const name = typeof key === 'string' ? asked.get(key) : undefined;
            const field = name ? root?.getFields()[name] : undefined;
            return e.extensions?.code === 'UNAUTHENTICATED' && field && isNonNullType(field.type) ? { ...e, message: nonNullRootRefusal(name!) } : e;
          });
        },
      };
    },
  };
}
