import { GraphQLError } from 'graphql';
import { Arg, Args, Authorized, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import { pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import type { Principal } from '../auth/principal.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Money } from '../graphql/money.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { nodeLoaders } from '../graphql/node.js';
import { differenceById, type DifferenceRow, listDifferences, reconcileWindow, type ReconciliationSummary, resolveDifference, UNNAMED_PREFIX } from './reconciliation.js';
import {
  ReconcileSettlementWindowInput,
  ReconcileSettlementWindowPayload,
  ReconciliationDifferenceConnection,
  type ReconciliationDifferenceKindEnum,
  ReconciliationDifferencesArgs,
  type ReconciliationDifferenceStatusEnum,
  ReconciliationDifferenceType,
  ReconciliationRunType,
  ResolveReconciliationDifferenceInput,
  ResolveReconciliationDifferencePayload,
} from './reconciliation.types.js';
import { SettlementError } from './settlement.errors.js';
import { UUID } from './settlement.resolver.js';

const money = (amount: string | null, currency: string) => (amount === null ? null : Money.of(BigInt(amount), currency));

export function differenceView(row: DifferenceRow): ReconciliationDifferenceType {
  return Object.assign(new ReconciliationDifferenceType(), {
    id: toGlobalId('ReconciliationDifference', row.id),
    uuid: row.id,
    window: toGlobalId('SettlementWindow', row.window_id),
    kind: row.kind as ReconciliationDifferenceKindEnum,
    status: row.status as ReconciliationDifferenceStatusEnum,
    gatewayReference: row.gateway_reference.startsWith(UNNAMED_PREFIX) ? null : row.gateway_reference,
    gatewayType: row.gateway_type,
    ourReference: row.our_reference,
    ourAmount: money(row.our_amount, row.currency),
    gatewayAmount: money(row.gateway_amount, row.currency),
    note: row.note,
    resolvedBy: row.resolved_by,
    resolvedAt: row.resolved_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}

function runView(s: ReconciliationSummary): ReconciliationRunType {
  return Object.assign(new ReconciliationRunType(), {
    id: toGlobalId('ReconciliationRun', s.runId),
    window: toGlobalId('SettlementWindow', s.windowId),
    ranAt: s.ranAt,
    imported: s.imported,
    gatewayTransactions: s.gatewayCount,
    ourRecords: s.ourCount,
    matched: s.matched,
    differences: s.differences,
    openDifferences: s.openDifferences,
    gatewayFees: Money.of(s.gatewayFees, s.currency),
  });
}

/** Reconciliation is the operator’s alone: it shows every participant’s gateway traffic. */
const mayRead = (p: Principal | null) => p?.kind === 'OPERATOR' && p.scopes.includes('settlements:read');

nodeLoaders.set('ReconciliationDifference', async (ctx, id) => {
  const row = mayRead(ctx.principal) ? await differenceById(ctx.em, id) : null;
  return row ? differenceView(row) : null;
});

/** Reconciliation of settlement windows with the gateway's balance transactions (docs/settlement.md#reconciliation). */
@Resolver(() => ReconciliationDifferenceType)
export class ReconciliationResolver {
  @Authorized('OPERATOR', 'settlements:manage')
  @Mutation(() => ReconcileSettlementWindowPayload, {
    description:
      'Imports the gateway’s balance transactions of a closed window’s business day (and the later ones of its payouts), books their fees, and compares them with our top-ups, refunds and payouts. Every difference is listed in reconciliationDifferences; running it again duplicates nothing and never reopens a resolved one. A gateway that does not answer: GATEWAY_UNAVAILABLE, nothing written.',
  })
  async reconcileSettlementWindow(@Arg('input', () => ReconcileSettlementWindowInput, { description: 'The window to reconcile.' }) input: ReconcileSettlementWindowInput, @Ctx() ctx: GraphQLContext): Promise<ReconcileSettlementWindowPayload> {
    return withUserErrors<ReconcileSettlementWindowPayload>(async () => {
      try {
        const summary = await reconcileWindow(ctx.em, ctx.gateway ?? null, fromGlobalId(input.window, 'SettlementWindow').id);
        return { run: runView(summary), userErrors: [] };
      } catch (err) {
        if (err instanceof SettlementError && err.code === 'GATEWAY_UNAVAILABLE') ctx.log.warn({ err }, 'reconciliation: the gateway did not answer');
        throw err;
      }
    }, { run: null });
  }

  @Authorized('OPERATOR', 'settlements:manage')
  @Mutation(() => ResolveReconciliationDifferencePayload, { description: 'Resolves an OPEN reconciliation difference with a note saying what was found and done.' })
  async resolveReconciliationDifference(@Arg('input', () => ResolveReconciliationDifferenceInput, { description: 'The difference and the note that resolves it.' }) input: ResolveReconciliationDifferenceInput, @Ctx() ctx: GraphQLContext): Promise<ResolveReconciliationDifferencePayload> {
    return withUserErrors<ResolveReconciliationDifferencePayload>(async () => {
      const row = await resolveDifference(ctx.em, ctx.principal!.clientId, fromGlobalId(input.difference, 'ReconciliationDifference').id, input.note);
      return { difference: differenceView(row), userErrors: [] };
    }, { difference: null });
  }

  @Authorized('OPERATOR', 'settlements:read')
  @Query(() => ReconciliationDifferenceConnection, { description: 'A settlement window’s reconciliation differences, oldest first (operator, scope settlements:read).' })
  async reconciliationDifferences(@Args() args: ReconciliationDifferencesArgs, @Ctx() ctx: GraphQLContext) {
    const windowId = fromGlobalId(args.window, 'SettlementWindow').id;
    const page = pageRequest(args);
    if (page.after && (!UUID.test(page.after.id) || Number.isNaN(Date.parse(page.after.sortKey)))) {
      throw new GraphQLError('`after` is not a cursor this connection gave out', { extensions: { code: 'BAD_USER_INPUT' } });
    }
    const rows = await listDifferences(ctx.em, { windowId, status: args.status ?? null, after: page.after ? { position: page.after.sortKey, id: page.after.id } : null, limit: page.fetch });
    return toConnection(rows, page, (r) => ({ sortKey: r.position, id: r.id }), differenceView);
  }
}
