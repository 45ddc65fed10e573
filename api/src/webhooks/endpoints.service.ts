import { randomBytes, randomUUID } from 'node:crypto';
import { transitionWhere } from '../lifecycle/machine.js';
import { deliveryMachine } from './delivery-machine.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import { seal, unseal } from '../secrets/kek.js';
import { checkEndpointUrlResolved, type InternalUrls } from './endpoint-url.js';
import { ALL_EVENT_TYPES, isKnownEventType, WEBHOOK_EVENT_TYPES } from './event-types.js';
import type { EventOwnerKind } from './outbox.js';
import { WebhookError } from './webhooks.errors.js';

/** Whose endpoints: a merchant, a biller, or a card company (ISSUER); the principal's tenant. */
export interface WebhookOwner {
  kind: Exclude<EventOwnerKind, 'OPERATOR'>;
  id: string;
}

export interface WebhookEndpointRow {
  id: string;
  owner_kind: WebhookOwner['kind'];
  owner_id: string;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Date | string | null;
  disabled_at: Date | string | null;
  disabled_reason: 'MANUAL' | 'FAILING' | null;
  created_by_client: string;
  created_at: Date | string;
  updated_at: Date | string;
}

/** Stripe allows 16 per account; enough for a production, a staging and a few tools. */
export const MAX_ENDPOINTS_PER_OWNER = 16;
/** How long a rotated-out secret keeps signing beside the new one, at most (and by default). */
export const MAX_SECRET_OVERLAP_SECONDS = 24 * 3600;

/** The associated data a secret is sealed under: a sealed secret moved to another endpoint does not open. */
const sealContext = (endpointId: string) => `webhook-endpoint-secret:${endpointId}`;

function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** Known types that this kind of owner receives (a merchant never gets topup.*): a typo or a wrong type is refused, not silently never sent. */
function checkEventTypes(types: string[], ownerKind: WebhookOwner['kind']): string[] {
  const unique = [...new Set(types)];
  if (unique.length === 0) throw new WebhookError('INVALID_INPUT', 'subscribe to at least one event type (or "*" for all)', 'eventTypes');
  const unknown = unique.filter((t) => t !== ALL_EVENT_TYPES && !isKnownEventType(t));
  if (unknown.length) throw new WebhookError('UNKNOWN_EVENT_TYPE', `unknown event types: ${unknown.join(', ')} (docs/webhooks.md lists them)`, 'eventTypes');
  const notYours = unique.filter((t) => t !== ALL_EVENT_TYPES && !WEBHOOK_EVENT_TYPES[t]!.owners.includes(ownerKind));
  if (notYours.length) throw new WebhookError('UNKNOWN_EVENT_TYPE', `a ${ownerKind} never receives ${notYours.join(', ')}`, 'eventTypes');
  return unique.includes(ALL_EVENT_TYPES) ? [ALL_EVENT_TYPES] : unique.sort();
}

function checkDescription(description: string | null | undefined): string | null {
  if (description == null || description === '') return null;
  if (description.length > 500) throw new WebhookError('INVALID_INPUT', 'a description has at most 500 characters', 'description');
  return description;
}

/** The secrets that sign a delivery now: the current one, and the previous one until it expires. */
export function liveSecrets(kek: Buffer, endpoint: Pick<WebhookEndpointRow, 'id' | 'secret_sealed' | 'previous_secret_sealed' | 'previous_secret_expires_at'>, now: Date): string[] {
  const secrets = [unseal(kek, sealContext(endpoint.id), endpoint.secret_sealed).toString('utf8')];
  if (endpoint.previous_secret_sealed && endpoint.previous_secret_expires_at && new Date(endpoint.previous_secret_expires_at) > now) {
    secrets.push(unseal(kek, sealContext(endpoint.id), endpoint.previous_secret_sealed).toString('utf8'));
  }
  return secrets;
}

/**
 * The owner's endpoints, oldest first, after a position. The position's row gives the exact
 * timestamp (a cursor's ISO string drops microseconds); its text is the fallback once deleted.
 */
export async function listEndpointsPage(em: EntityManager, owner: WebhookOwner, opts: { after: { sortKey: string; id: string } | null; limit: number }): Promise<WebhookEndpointRow[]> {
  const params: unknown[] = [owner.kind, owner.id];
  let sql = `select * from webhook_endpoint where owner_kind = ? and owner_id = ?`;
  if (opts.after) {
    if (!isUuid(opts.after.id) || Number.isNaN(Date.parse(opts.after.sortKey))) return [];
    sql += ` and (created_at, id) > (coalesce((select created_at from webhook_endpoint where id = ?::uuid), ?::timestamptz), ?::uuid)`;
    params.push(opts.after.id, opts.after.sortKey, opts.after.id);
  }
  params.push(opts.limit);
  return em.execute<WebhookEndpointRow[]>(`${sql} order by created_at, id limit ?`, params);
}

/** An endpoint of this owner (another owner's answers as missing); `lock` for the caller's transaction. */
export async function findEndpoint(em: EntityManager, owner: WebhookOwner, id: string, lock = false): Promise<WebhookEndpointRow | undefined> {
  if (!isUuid(id)) return undefined;
  const [row] = await em.execute<WebhookEndpointRow[]>(`select * from webhook_endpoint where id = ? and owner_kind = ? and owner_id = ?${lock ? ' for update' : ''}`, [id, owner.kind, owner.id]);
  return row;
}

async function endpointOrRefuse(em: EntityManager, owner: WebhookOwner, id: string): Promise<WebhookEndpointRow> {
  const row = await findEndpoint(em, owner, id, true);
  if (!row) throw new WebhookError('NOT_FOUND', 'no such webhook endpoint', 'endpoint');
  return row;
}

export function isUuid(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
}

/** Registers an endpoint; its signing secret is returned here, once, and kept only sealed. */
export async function createEndpoint(
  em: EntityManager,
  deps: { kek: Buffer; internalUrls: InternalUrls },
  owner: WebhookOwner,
  clientId: string,
  input: { url: string; eventTypes: string[]; description?: string | null },
): Promise<{ endpoint: WebhookEndpointRow; secret: string }> {
  const eventTypes = checkEventTypes(input.eventTypes, owner.kind);
  const description = checkDescription(input.description);
  const url = await checkEndpointUrlResolved(input.url, deps.internalUrls);
  return em.transactional(async (tx) => {
    // Serialises creations per owner, so two at once cannot both pass the limit.
    await tx.execute(`select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`webhook-endpoints:${owner.kind}:${owner.id}`]);
    const [{ n }] = (await tx.execute<{ n: number }[]>(`select count(*)::int as n from webhook_endpoint where owner_kind = ? and owner_id = ?`, [owner.kind, owner.id])) as [{ n: number }];
    if (n >= MAX_ENDPOINTS_PER_OWNER) throw new WebhookError('WEBHOOK_ENDPOINT_LIMIT_REACHED', `at most ${MAX_ENDPOINTS_PER_OWNER} webhook endpoints; delete one first`);
    const id = randomUUID();
    const secret = newSecret();
    const [endpoint] = await tx.execute<WebhookEndpointRow[]>(
      `insert into webhook_endpoint (id, owner_kind, owner_id, url, description, event_types, secret_sealed, created_by_client) values (?, ?, ?, ?, ?, ?::text[], ?, ?) returning *`,
      [id, owner.kind, owner.id, url, description, textArray(eventTypes), seal(deps.kek, sealContext(id), Buffer.from(secret, 'utf8')), clientId],
    );
    return { endpoint: endpoint!, secret };
  });
}

/**
 * Changes an endpoint. Disabling it cancels what waits to be delivered to it (replay, or catch up
 * with `events`, after turning it back on); enabling it clears why it was disabled.
 */
export async function updateEndpoint(
  em: EntityManager,
  internalUrls: InternalUrls,
  owner: WebhookOwner,
  id: string,
  input: { url?: string | null; eventTypes?: string[] | null; description?: string | null; enabled?: boolean | null },
): Promise<WebhookEndpointRow> {
  const eventTypes = input.eventTypes != null ? checkEventTypes(input.eventTypes, owner.kind) : undefined;
  const description = input.description !== undefined ? checkDescription(input.description) : undefined;
  const url = input.url != null ? await checkEndpointUrlResolved(input.url, internalUrls) : undefined;
  return em.transactional(async (tx) => {
    const current = await endpointOrRefuse(tx, owner, id);
    const enabled = input.enabled ?? current.enabled;
    const [row] = await tx.execute<WebhookEndpointRow[]>(
      `update webhook_endpoint set url = ?, event_types = ?::text[], description = ?, enabled = ?::boolean,
         disabled_at = case when ?::boolean then null else coalesce(disabled_at, now()) end,
         disabled_reason = case when ?::boolean then null else coalesce(disabled_reason, 'MANUAL') end,
         updated_at = now()
       where id = ? returning *`,
      [url ?? current.url, textArray(eventTypes ?? current.event_types), description === undefined ? current.description : description, enabled, enabled, enabled, id],
    );
    if (!enabled && current.enabled) await cancelPendingDeliveries(tx, id);
    return row!;
  });
}

/**
 * A new signing secret, shown once. The previous one keeps signing beside it (two v1 signatures)
 * for `overlapSeconds` (24 h by default; 0 when it leaked), so receivers can switch without a gap.
 * A rotation during an overlap drops the older secret.
 */
export async function rotateSecret(em: EntityManager, kek: Buffer, owner: WebhookOwner, id: string, overlapSeconds = MAX_SECRET_OVERLAP_SECONDS): Promise<{ endpoint: WebhookEndpointRow; secret: string }> {
  if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_SECRET_OVERLAP_SECONDS) {
    throw new WebhookError('INVALID_INPUT', `the previous secret may keep signing for 0 to ${MAX_SECRET_OVERLAP_SECONDS} seconds`, 'previousSecretExpiresIn');
  }
  return em.transactional(async (tx) => {
    const current = await endpointOrRefuse(tx, owner, id);
    const secret = newSecret();
    const [endpoint] = await tx.execute<WebhookEndpointRow[]>(
      `update webhook_endpoint set secret_sealed = ?,
         previous_secret_sealed = case when ?::int > 0 then ?::text end,
         previous_secret_expires_at = case when ?::int > 0 then now() + ?::int * interval '1 second' end,
         updated_at = now()
       where id = ? returning *`,
      [seal(kek, sealContext(id), Buffer.from(secret, 'utf8')), overlapSeconds, current.secret_sealed, overlapSeconds, overlapSeconds, id],
    );
    return { endpoint: endpoint!, secret };
  });
}

/** Deletes an endpoint with its deliveries and their attempts; queued jobs for them find nothing and end. */
export async function deleteEndpoint(em: EntityManager, owner: WebhookOwner, id: string): Promise<void> {
  await em.transactional(async (tx) => {
    await endpointOrRefuse(tx, owner, id);
    await tx.execute(`delete from webhook_endpoint where id = ?`, [id]);
  });
}

/** Deliveries waiting for an endpoint that no longer takes them: CANCELED, their jobs end without sending. */
export async function cancelPendingDeliveries(em: EntityManager, endpointId: string): Promise<number> {
  const rows = await transitionWhere(em, deliveryMachine, { from: ['PENDING'], to: 'CANCELED', patch: { next_attempt_at: null }, where: 't.endpoint_id = ?', params: [endpointId], cause: 'its endpoint takes no events now' });
  return rows.length;
}

/** A text[] literal for a `?::text[]` parameter (MikroORM expands JS arrays into lists). */
export function textArray(values: string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;
}
