import { GraphQLError } from 'graphql';
import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import type { Principal } from '../auth/principal.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { nodeLoaders } from '../graphql/node.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { attemptsOf, findDelivery, listDeliveries, replayEvent, type DeliveryRow } from './deliveries.service.js';
import { createEndpoint, deleteEndpoint, findEndpoint, listEndpointsPage, rotateSecret, updateEndpoint, type WebhookEndpointRow, type WebhookOwner } from './endpoints.service.js';
import { ALL_EVENT_TYPES, isKnownEventType } from './event-types.js';
import { eventGlobalId, eventsByIds, findEvent, listEvents, type EventRow } from './events.service.js';
import {
  CreateWebhookEndpointInput,
  CreateWebhookEndpointPayload,
  DeleteWebhookEndpointInput,
  DeleteWebhookEndpointPayload,
  EventConnection,
  EventType,
  ReplayWebhookEventInput,
  ReplayWebhookEventPayload,
  RotateWebhookSecretInput,
  RotateWebhookSecretPayload,
  UpdateWebhookEndpointInput,
  UpdateWebhookEndpointPayload,
  WebhookAttemptType,
  WebhookDeliveryConnection,
  type WebhookDeliveryStatusEnum,
  WebhookDeliveryType,
  type WebhookDisabledReasonEnum,
  WebhookEndpointConnection,
  WebhookEndpointType,
} from './webhooks.types.js';

/** A merchant's, biller's or card company's own webhooks: the principal's tenant. */
function ownerOf(principal: Principal): WebhookOwner {
  if ((principal.kind === 'MERCHANT' || principal.kind === 'BILLER' || principal.kind === 'ISSUER') && principal.tenantId) return { kind: principal.kind, id: principal.tenantId };
  throw new GraphQLError(`Not allowed for a ${principal.kind} client`, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
}

/** Our cursors over bigint keys carry digits; anything else was not given out by us. */
function numericCursor(value: string): string {
  if (!/^[0-9]{1,18}$/.test(value)) throw new GraphQLError('`after` is not a cursor this connection gave out', { extensions: { code: 'BAD_USER_INPUT' } });
  return value;
}

/** An id of the expected type, decoded; an id of another type is BAD_USER_INPUT, as everywhere. */
const idOf = (globalId: string, type: string) => fromGlobalId(globalId, type).id;

function endpointView(row: WebhookEndpointRow): WebhookEndpointType {
  return Object.assign(new WebhookEndpointType(), {
    id: toGlobalId('WebhookEndpoint', row.id),
    uuid: row.id,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types,
    enabled: row.enabled,
    disabledReason: row.disabled_reason as WebhookDisabledReasonEnum | null,
    disabledAt: row.disabled_at,
    // An expired overlap is history, not state.
    previousSecretExpiresAt: row.previous_secret_expires_at && new Date(row.previous_secret_expires_at) > new Date() ? row.previous_secret_expires_at : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}

function eventView(row: EventRow): EventType {
  return Object.assign(new EventType(), { id: eventGlobalId(row.id), type: row.type, created: row.created_at, subject: row.subject_id, data: row.payload });
}

/** Delivery views with their event and endpoint, loaded in two queries for the whole page. */
async function deliveryViews(ctx: GraphQLContext, owner: WebhookOwner, rows: DeliveryRow[]): Promise<WebhookDeliveryType[]> {
  const events = await eventsByIds(ctx.em, [...new Set(rows.map((r) => r.event_id))]);
  const endpoints = new Map<string, WebhookEndpointRow>();
  for (const id of new Set(rows.map((r) => r.endpoint_id))) {
    const endpoint = await findEndpoint(ctx.em, owner, id);
    if (endpoint) endpoints.set(id, endpoint);
  }
  return rows
    .filter((r) => events.has(r.event_id) && endpoints.has(r.endpoint_id))
    .map((r) =>
      Object.assign(new WebhookDeliveryType(), {
        id: toGlobalId('WebhookDelivery', r.id),
        internalId: r.id,
        event: eventView(events.get(r.event_id)!),
        endpoint: endpointView(endpoints.get(r.endpoint_id)!),
        status: r.status as WebhookDeliveryStatusEnum,
        replay: r.replay,
        attemptCount: r.attempts,
        firstAttemptAt: r.first_attempt_at,
        nextAttemptAt: r.status === 'PENDING' ? r.next_attempt_at : null,
        deliveredAt: r.delivered_at,
        createdAt: r.created_at,
      }),
    );
}

const ownerFor = (ctx: GraphQLContext): WebhookOwner | null => {
  const p = ctx.principal;
  return p && (p.kind === 'MERCHANT' || p.kind === 'BILLER' || p.kind === 'ISSUER') && p.tenantId ? { kind: p.kind, id: p.tenantId } : null;
};

nodeLoaders.set('WebhookEndpoint', async (ctx, id) => {
  const owner = ownerFor(ctx);
  const row = owner && ctx.principal!.scopes.includes('webhooks:manage') ? await findEndpoint(ctx.em, owner, id) : undefined;
  return row ? endpointView(row) : null;
});
nodeLoaders.set('Event', async (ctx, id) => {
  const owner = ownerFor(ctx);
  const row = owner && ctx.principal!.scopes.includes('events:read') ? await findEvent(ctx.em, owner, id) : undefined;
  return row ? eventView(row) : null;
});
nodeLoaders.set('WebhookDelivery', async (ctx, id) => {
  const owner = ownerFor(ctx);
  const row = owner && ctx.principal!.scopes.includes('webhooks:manage') ? await findDelivery(ctx.em, owner, id) : undefined;
  return row ? ((await deliveryViews(ctx, owner!, [row]))[0] ?? null) : null;
});

@ArgsType()
class EventsArgs extends ConnectionArgs {
  @Field(() => [String], { nullable: true, description: 'Only events of these types.' })
  types?: string[] | null;
}

@ArgsType()
class WebhookDeliveriesArgs extends ConnectionArgs {
  @Field(() => ID, { nullable: true, description: 'Only the deliveries of this Event.' })
  event?: string | null;

  @Field(() => ID, { nullable: true, description: 'Only the deliveries to this WebhookEndpoint.' })
  endpoint?: string | null;
}

/**
 * `after` of `events`: an endCursor, or the id of an event you received by webhook (the next page
 * starts after it), so a receiver can catch up from the last event it handled.
 */
async function afterPosition(ctx: GraphQLContext, owner: WebhookOwner, after: string | null | undefined): Promise<{ position: string | null; args: ConnectionArgs }> {
  if (!after) return { position: null, args: {} };
  const decoded = /^[A-Za-z0-9_-]{1,200}$/.test(after) ? Buffer.from(after, 'base64url').toString('utf8') : '';
  if (decoded.startsWith('Event:')) {
    const event = await findEvent(ctx.em, owner, decoded.slice('Event:'.length));
    if (!event) throw new GraphQLError('`after`: no such event of yours', { extensions: { code: 'BAD_USER_INPUT' } });
    return { position: event.position, args: {} };
  }
  const page = pageRequest({ after });
  return { position: numericCursor(page.after!.sortKey), args: { after } };
}

@Resolver(() => WebhookEndpointType)
export class WebhookEndpointResolver {
  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'webhooks:manage')
  @Query(() => WebhookEndpointConnection, { description: 'Your webhook endpoints, oldest first (scope webhooks:manage).' })
  async webhookEndpoints(@Args() args: ConnectionArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await listEndpointsPage(ctx.em, ownerOf(ctx.principal!), { after: page.after, limit: page.fetch });
    return toConnection(rows, page, (r) => ({ sortKey: new Date(r.created_at).toISOString(), id: r.id }), endpointView);
  }

  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'webhooks:manage')
  @Mutation(() => CreateWebhookEndpointPayload, { description: 'Registers a webhook endpoint for your events (scope webhooks:manage). Its signing secret is in the payload, once.' })
  async createWebhookEndpoint(@Arg('input', () => CreateWebhookEndpointInput, { description: 'The URL and the event types to receive.' }) input: CreateWebhookEndpointInput, @Ctx() ctx: GraphQLContext): Promise<CreateWebhookEndpointPayload> {
    const kek = await loadKeyEncryptionKey(ctx.config);
    return withUserErrors<CreateWebhookEndpointPayload>(
      async () => {
        const made = await createEndpoint(ctx.em, { kek, internalUrls: ctx.config.internalUrls }, ownerOf(ctx.principal!), ctx.principal!.clientId, input);
        return { endpoint: endpointView(made.endpoint), secret: made.secret, userErrors: [] };
      },
      { endpoint: null, secret: null },
    );
  }

  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'webhooks:manage')
  @Mutation(() => UpdateWebhookEndpointPayload, { description: 'Changes the URL, event types or description of your endpoint, or disables / enables it (scope webhooks:manage).' })
  updateWebhookEndpoint(@Arg('input', () => UpdateWebhookEndpointInput, { description: 'The endpoint and what changes.' }) input: UpdateWebhookEndpointInput, @Ctx() ctx: GraphQLContext): Promise<UpdateWebhookEndpointPayload> {
    return withUserErrors<UpdateWebhookEndpointPayload>(
      async () => ({ endpoint: endpointView(await updateEndpoint(ctx.em, ctx.config.internalUrls, ownerOf(ctx.principal!), idOf(input.endpoint, 'WebhookEndpoint'), input)), userErrors: [] }),
      { endpoint: null },
    );
  }

  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'webhooks:manage')
  @Mutation(() => RotateWebhookSecretPayload, { description: 'A new signing secret for your endpoint, shown once; the previous one keeps signing beside it for 24 hours (or previousSecretExpiresIn seconds). Scope webhooks:manage.' })
  async rotateWebhookSecret(@Arg('input', () => RotateWebhookSecretInput, { description: 'The endpoint, and how long the current secret keeps signing.' }) input: RotateWebhookSecretInput, @Ctx() ctx: GraphQLContext): Promise<RotateWebhookSecretPayload> {
    const kek = await loadKeyEncryptionKey(ctx.config);
    return withUserErrors<RotateWebhookSecretPayload>(
      async () => {
        const rotated = await rotateSecret(ctx.em, kek, ownerOf(ctx.principal!), idOf(input.endpoint, 'WebhookEndpoint'), input.previousSecretExpiresIn ?? undefined);
        return { endpoint: endpointView(rotated.endpoint), secret: rotated.secret, userErrors: [] };
      },
      { endpoint: null, secret: null },
    );
  }

  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'webhooks:manage')
  @Mutation(() => DeleteWebhookEndpointPayload, { description: 'Deletes your endpoint and its delivery history; nothing more is sent to it (scope webhooks:manage).' })
  deleteWebhookEndpoint(@Arg('input', () => DeleteWebhookEndpointInput, { description: 'The endpoint to delete.' }) input: DeleteWebhookEndpointInput, @Ctx() ctx: GraphQLContext): Promise<DeleteWebhookEndpointPayload> {
    return withUserErrors<DeleteWebhookEndpointPayload>(
      async () => {
        await deleteEndpoint(ctx.em, ownerOf(ctx.principal!), idOf(input.endpoint, 'WebhookEndpoint'));
        return { deletedEndpointId: input.endpoint, userErrors: [] };
      },
      { deletedEndpointId: null },
    );
  }
}

@Resolver(() => EventType)
export class EventResolver {
  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'events:read')
  @Query(() => EventConnection, {
    description:
      'Your events in the order they were published (the order webhooks were sent in), to catch up on what your endpoint missed (scope events:read). `after` takes an endCursor or the id of an event you received; dedupe by id.',
  })
  async events(@Args() args: EventsArgs, @Ctx() ctx: GraphQLContext) {
    const owner = ownerOf(ctx.principal!);
    const bad = args.types?.filter((t) => t === ALL_EVENT_TYPES || !isKnownEventType(t));
    if (bad?.length) throw new GraphQLError(`\`types\`: unknown event types ${bad.join(', ')}`, { extensions: { code: 'BAD_USER_INPUT' } });
    const start = await afterPosition(ctx, owner, args.after);
    const page = pageRequest({ first: args.first, ...start.args });
    const rows = await listEvents(ctx.em, owner, { afterPosition: start.position, types: args.types ?? null, limit: page.fetch });
    return toConnection(rows, page, (r) => ({ sortKey: r.position!, id: r.id }), eventView);
  }
}

@Resolver(() => WebhookDeliveryType)
export class WebhookDeliveryResolver {
  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'webhooks:manage')
  @Query(() => WebhookDeliveryConnection, { description: 'Deliveries to your endpoints, newest first, of one event and/or to one endpoint (scope webhooks:manage).' })
  async webhookDeliveries(@Args() args: WebhookDeliveriesArgs, @Ctx() ctx: GraphQLContext) {
    const owner = ownerOf(ctx.principal!);
    const page = pageRequest(args);
    const rows = await listDeliveries(ctx.em, owner, {
      eventId: args.event ? idOf(args.event, 'Event') : undefined,
      endpointId: args.endpoint ? idOf(args.endpoint, 'WebhookEndpoint') : undefined,
      beforeId: page.after ? numericCursor(page.after.id) : null,
      limit: page.fetch,
    });
    const views = new Map((await deliveryViews(ctx, owner, rows)).map((v) => [v.internalId, v]));
    return toConnection(
      rows.filter((r) => views.has(r.id)),
      page,
      (r) => ({ sortKey: r.id, id: r.id }),
      (r) => views.get(r.id)!,
    );
  }

  @FieldResolver(() => [WebhookAttemptType], { description: 'Every attempt, oldest first.' })
  async attempts(@Root() delivery: WebhookDeliveryType, @Ctx() ctx: GraphQLContext): Promise<WebhookAttemptType[]> {
    const rows = await attemptsOf(ctx.em, delivery.internalId);
    return rows.map((a) => Object.assign(new WebhookAttemptType(), { attemptedAt: a.attempted_at, statusCode: a.status_code, error: a.error, durationMs: a.duration_ms }));
  }

  @Authorized('MERCHANT', 'BILLER', 'ISSUER', 'webhooks:manage')
  @Mutation(() => ReplayWebhookEventPayload, { description: 'Sends one of your events again, now, as a fresh delivery: to one endpoint, or to every enabled endpoint subscribed to its type (scope webhooks:manage).' })
  async replayWebhookEvent(@Arg('input', () => ReplayWebhookEventInput, { description: 'The event, and optionally the one endpoint to send it to.' }) input: ReplayWebhookEventInput, @Ctx() ctx: GraphQLContext): Promise<ReplayWebhookEventPayload> {
    const owner = ownerOf(ctx.principal!);
    const eventId = idOf(input.event, 'Event');
    const endpointId = input.endpoint ? idOf(input.endpoint, 'WebhookEndpoint') : undefined;
    return withUserErrors<ReplayWebhookEventPayload>(
      async () => ({ deliveries: await deliveryViews(ctx, owner, await replayEvent(ctx.em, owner, { eventId, endpointId })), userErrors: [] }),
      { deliveries: [] },
    );
  }
}
