import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLContext } from './context.js';

/**
 * The HTTP status of a request with fields refused for want of a token. The auth checker refuses
 * each protected field on its own (UNAUTHENTICATED, with its path, its value null), so the public
 * fields beside it still answer; the request then answers 200 like any partial result. Only when
 * nothing answered is it 401 with WWW-Authenticate, as for a request of protected fields only.
 * A root field answered if its value is not null, or it is null with no error under it (viewer).
 */
export function anonymousStatusPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          if (!errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED')) return;
          const answered = !!data && Object.entries(data).some(([key, value]) => value !== null || !errors.some((e) => e.path?.[0] === key));
          if (answered) {
            if (response.http.status === 401) response.http.status = 200;
            response.http.headers.delete('www-authenticate');
          } else {
            response.http.status = 401;
            response.http.headers.set('www-authenticate', 'Bearer realm="OneCard"');
          }
        },
      };
    },
  };
}
