import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { FragmentDefinitionNode, GraphQLError, GraphQLSchema, OperationDefinitionNode } from 'graphql';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import type { Metrics } from './http/metrics.js';
import type { GraphQLContext } from './graphql/context.js';
import { anonymousStatusPlugin } from './graphql/anonymous-status.js';
import { errorFormatter, isPublicCode } from './graphql/errors.js';
import { bucketKey, CostBuckets, type CostThrottleSettings, markedChargedInItsTransaction, peekBucket, pendingCharge, type ThrottleStatus, throttled, unlessUnavailable } from './graphql/cost-throttle.js';
import { chargesInItsTransaction } from './graphql/idempotency.js';
import { checkInput } from './graphql/input-checks.js';
import { DEFAULT_LIMITS, measure, type QueryLimits } from './graphql/query-cost.js';
import { apiSchema } from './schema.js';

/** Whether every root field of a mutation runs in a transaction of its own that takes the request's charge (a transactional @Idempotent, a card-session mutation). */
function chargedByItsTransaction(schema: GraphQLSchema, operation: OperationDefinitionNode): boolean {
  return (
    operation.operation === 'mutation' &&
    operation.selectionSet.selections.every((s) => s.kind === 'Field' && (chargesInItsTransaction(s.name.value) || markedChargedInItsTransaction(schema, s.name.value)))
  );
}

/**
 * The checks every operation passes after validation and before any resolver runs, in order:
 * its input (input-checks.ts), its limits and cost (query-cost.ts), then its caller's cost bucket
 * (cost-throttle.ts), charged the cost: by the mutation's own transaction when it has one
 * (`ctx.costCharge`), otherwise here, written behind; either way with no commit of its own. Every
 * answer to an operation reports its cost and the bucket in `extensions.cost`.
 */
function operationChecksPlugin(limits: QueryLimits, throttle: CostThrottleSettings, log: Logger): ApolloServerPlugin<GraphQLContext> {
  const buckets = new CostBuckets(throttle, log);
  return {
    async serverWillStart() {
      return { serverWillStop: () => buckets.close() };
    },
    async requestDidStart() {
      // `checked`: the bucket as read before a mutation whose own transaction was to take the charge.
      let report: { requested: number | undefined; throttleStatus?: ThrottleStatus; checked?: ThrottleStatus } | undefined;
      return {
        async didResolveOperation({ schema, document, operation, request, contextValue }) {
          if (!operation) return;
          const variables = request.variables ?? {};
          // An operation run in process with no request context (Apollo's executeOperation, in tests) has no caller to charge.
          const throttling = !!contextValue.em;
          const key = bucketKey(contextValue.principal, contextValue.clientIp);
          let cost: number;
          try {
            checkInput(schema, document, operation, variables);
            const fragments: Record<string, FragmentDefinitionNode> = {};
            for (const d of document.definitions) if (d.kind === 'FragmentDefinition') fragments[d.name.value] = d;
            cost = measure(schema, operation, fragments, variables, limits).cost;
          } catch (err) {
            // Refused before it was charged: the bucket as it stands.
            const counted = (err as GraphQLError).extensions?.cost as { requested?: number } | undefined;
            report = { requested: counted?.requested, throttleStatus: throttling ? await unlessUnavailable(peekBucket(contextValue.em, key, throttle), contextValue.log) : undefined };
            throw err;
          }
          contextValue.cost = cost;
          report = { requested: cost };
          if (!throttling) return;
          if (chargedByItsTransaction(schema, operation)) {
            // Refused before it runs when its bucket is short (however the mutation would end); its
            // transaction then takes the exact charge.
            const status = await unlessUnavailable(buckets.available(contextValue.em, key), contextValue.log);
            if (status && status.currentlyAvailable < cost) {
              report.throttleStatus = status;
              throw throttled(cost, limits.maxCost, status);
            }
            report.checked = status;
            contextValue.costCharge = pendingCharge(key, cost, limits.maxCost, throttle);
            return;
          }
          const charge = await unlessUnavailable(buckets.charge(contextValue.em, key, cost), contextValue.log);
          if (!charge) return;
          report.throttleStatus = charge.status;
          if (!charge.charged) throw throttled(cost, limits.maxCost, charge.status);
        },
        async willSendResponse({ response, contextValue }) {
          const pending = contextValue.costCharge;
          if (pending && report) {
            // Refused or failed before its transaction took the charge: charged all the same, written behind.
            if (!pending.taken && !pending.status) {
              buckets.defer(contextValue.em, bucketKey(contextValue.principal, contextValue.clientIp), report.requested!);
              // The answer still reports the bucket: as read before it ran, less this charge.
              report.throttleStatus = report.checked && { ...report.checked, currentlyAvailable: Math.max(0, report.checked.currentlyAvailable - report.requested!) };
            } else {
              report.throttleStatus = pending.status;
              buckets.observe(bucketKey(contextValue.principal, contextValue.clientIp), pending.status);
            }
          }
          if (response.body.kind === 'single' && report) {
            response.body.singleResult.extensions = { ...response.body.singleResult.extensions, cost: { requested: report.requested, limit: limits.maxCost, throttleStatus: report.throttleStatus } };
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
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const server = new ApolloServer<GraphQLContext>({
    schema: await apiSchema(),
    introspection: opts.config.introspection,
    hideSchemaDetailsFromClientErrors: !opts.config.introspection, // no "did you mean" field suggestions
    includeStacktraceInErrorResponses: false,
    // main.ts stops everything in order on a signal; Apollo's own handler would race it.
    stopOnTerminationSignals: false,
    formatError: errorFormatter({ development }),
    // The token limit, enforced by graphql's parser as it reads: a huge document is refused at its 1,001st token.
    parseOptions: { maxTokens: limits.maxTokens },
    // Our own offline GraphiQL is the landing page; Apollo's loads from a CDN.
    plugins: [ApolloServerPluginLandingPageDisabled(), operationChecksPlugin(limits, opts.config.costThrottle, opts.log), metricsPlugin(opts.metrics), errorLoggingPlugin(), anonymousStatusPlugin()],
  });
  await server.start();
  return server;
}
