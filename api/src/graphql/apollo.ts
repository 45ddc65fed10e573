import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { FragmentDefinitionNode } from 'graphql';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Metrics } from '../http/metrics.js';
import type { GraphQLContext } from './context.js';
import { errorFormatter, isPublicCode } from './errors.js';
import { DEFAULT_LIMITS, enforce, measure, type QueryLimits } from './query-cost.js';
import { apiSchema } from './schema.js';

/** Measures each operation before it runs, refuses it over the limits, reports the cost in `extensions`. */
function queryCostPlugin(limits: QueryLimits): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request, contextValue }) {
          if (!operation) return;
          const fragments: Record<string, FragmentDefinitionNode> = {};
          for (const d of document.definitions) if (d.kind === 'FragmentDefinition') fragments[d.name.value] = d;
          const measured = measure(schema, operation, fragments, request.variables ?? {});
          contextValue.cost = measured.cost;
          enforce(measured, limits);
        },
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind === 'single' && contextValue.cost !== undefined) {
            response.body.singleResult.extensions = { ...response.body.singleResult.extensions, cost: { requested: contextValue.cost, limit: limits.maxCost } };
          }
        },
      };
    },
  };
}

/**
 * Logs each unexpected error with the request's logger (so with its request id), and gives the
 * client that id in the error, to quote when it reports the problem.
 */
function errorLoggingPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue }) {
          for (const error of errors) {
            if (!isPublicCode(error.extensions?.code)) contextValue.log.error({ err: unwrapResolverError(error), path: error.path }, 'internal error in a GraphQL operation');
          }
        },
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind !== 'single' || !response.body.singleResult.errors) return;
          response.body.singleResult.errors = response.body.singleResult.errors.map((e) =>
            e.extensions?.code === 'INTERNAL_SERVER_ERROR' ? { ...e, extensions: { ...e.extensions, requestId: contextValue.requestId } } : e,
          );
        },
      };
    },
  };
}

/** Counts and times each operation by name for /metrics. */
function metricsPlugin(metrics: Metrics): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart({ request }) {
      const started = process.hrtime.bigint();
      return {
        async willSendResponse({ operation, operationName, errors }) {
          const op = metrics.operationLabel(operationName ?? request.operationName);
          const type = operation?.operation ?? 'unknown';
          metrics.graphqlRequests.inc({ operation: op, type, outcome: errors?.length ? 'error' : 'ok' });
          metrics.graphqlDuration.observe({ operation: op, type }, Number(process.hrtime.bigint() - started) / 1e9);
        },
      };
    },
  };
}

export async function createApolloServer(opts: { config: Config; log: Logger; metrics: Metrics; limits?: QueryLimits }): Promise<ApolloServer<GraphQLContext>> {
  const development = opts.config.env === 'development';
  const server = new ApolloServer<GraphQLContext>({
    schema: await apiSchema(),
    introspection: opts.config.introspection,
    hideSchemaDetailsFromClientErrors: !opts.config.introspection, // no "did you mean" field suggestions
    includeStacktraceInErrorResponses: false,
    // main.ts stops everything in order on a signal; Apollo's own handler would race it.
    stopOnTerminationSignals: false,
    formatError: errorFormatter({ development }),
    // Our own offline GraphiQL is the landing page; Apollo's loads from a CDN.
    plugins: [ApolloServerPluginLandingPageDisabled(), queryCostPlugin(opts.limits ?? DEFAULT_LIMITS), metricsPlugin(opts.metrics), errorLoggingPlugin()],
  });
  await server.start();
  return server;
}
