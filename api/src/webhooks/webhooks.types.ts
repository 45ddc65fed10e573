import { JSONObjectResolver } from 'graphql-scalars';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum WebhookDisabledReasonEnum {
  MANUAL = 'MANUAL',
  FAILING = 'FAILING',
}
registerEnumType(WebhookDisabledReasonEnum, {
  name: 'WebhookDisabledReason',
  description: 'Why an endpoint is disabled.',
  valuesConfig: {
    MANUAL: { description: 'You disabled it (updateWebhookEndpoint).' },
    FAILING: { description: 'Its deliveries failed for the whole retry period (72 hours) with nothing delivered meanwhile.' },
  },
});

export enum WebhookDeliveryStatusEnum {
  PENDING = 'PENDING',
  DELIVERED = 'DELIVERED',
  FAILED = 'FAILED',
  CANCELED = 'CANCELED',
}
registerEnumType(WebhookDeliveryStatusEnum, {
  name: 'WebhookDeliveryStatus',
  description: 'Where a delivery of an event to an endpoint stands.',
  valuesConfig: {
    PENDING: { description: 'Not delivered yet: the first attempt is on its way, or the next one is at nextAttemptAt.' },
    DELIVERED: { description: 'The endpoint answered 2xx.' },
    FAILED: { description: 'Every attempt failed for the whole retry period (72 hours); replay it when the endpoint is fixed.' },
    CANCELED: { description: 'The endpoint was disabled before the event reached it; replay it, or catch up with `events`.' },
  },
});

@ObjectType('WebhookEndpoint', { implements: Node, description: 'Where your events are POSTed, signed (docs/webhooks.md). Its secret is shown only when it is made or rotated.' })
export class WebhookEndpointType extends Node {
  uuid!: string;

  @Field({ description: 'The https URL the events are POSTed to.' })
  url!: string;

  @Field(() => String, { nullable: true, description: 'Your note about it.' })
  description!: string | null;

  @Field(() => [String], { description: 'The event types it receives; ["*"] is every type, including types added later.' })
  eventTypes!: string[];

  @Field({ description: 'False: nothing is sent to it.' })
  enabled!: boolean;

  @Field(() => WebhookDisabledReasonEnum, { nullable: true, description: 'Why it is disabled.' })
  disabledReason!: WebhookDisabledReasonEnum | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was disabled.' })
  disabledAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Until when the secret before the last rotation still signs beside the current one.' })
  previousSecretExpiresAt!: Date | null;

  @Field(() => DateTimeScalar, { description: 'When the endpoint was registered.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { description: 'When it last changed (settings, secret, enabled or disabled).' })
  updatedAt!: Date;
}

export const WebhookEndpointConnection = connectionType(WebhookEndpointType, 'WebhookEndpoint');

@ObjectType('Event', { implements: Node, description: 'Something that happened to your data, as webhooks deliver it: the body of a webhook is { id, type, created, data }.' })
export class EventType extends Node {
  @Field({ description: 'E.g. payment.succeeded (docs/webhooks.md lists the types and their data).' })
  type!: string;

  @Field(() => DateTimeScalar, { description: 'When it happened (the change’s transaction).' })
  created!: Date;

  @Field(() => ID, { description: 'Global id of the object it is about.' })
  subject!: string;

  @Field(() => JSONObjectResolver, { description: 'The event’s data, as in the webhook body.' })
  data!: Record<string, unknown>;
}

export const EventConnection = connectionType(EventType, 'Event');

@ObjectType('WebhookAttempt', { description: 'One POST of a delivery, and how the endpoint answered.' })
export class WebhookAttemptType {
  @Field(() => DateTimeScalar, { description: 'When the POST was sent.' })
  attemptedAt!: Date;

  @Field(() => Int, { nullable: true, description: 'The HTTP status the endpoint answered; null when no answer came.' })
  statusCode!: number | null;

  @Field(() => String, { nullable: true, description: 'Why it failed: the status, a timeout, a connection error; null when delivered.' })
  error!: string | null;

  @Field(() => Int, { description: 'How long the attempt took, in milliseconds.' })
  durationMs!: number;
}

@ObjectType('WebhookDelivery', { implements: Node, description: 'One event on its way to one endpoint, with its attempts.' })
export class WebhookDeliveryType extends Node {
  internalId!: string;

  @Field(() => EventType, { description: 'The event delivered.' })
  event!: EventType;

  @Field(() => WebhookEndpointType, { description: 'The endpoint it is delivered to.' })
  endpoint!: WebhookEndpointType;

  @Field(() => WebhookDeliveryStatusEnum, { description: 'Where the delivery stands.' })
  status!: WebhookDeliveryStatusEnum;

  @Field({ description: 'Made by replayWebhookEvent.' })
  replay!: boolean;

  @Field(() => Int, { description: 'Attempts made so far.' })
  attemptCount!: number;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the first attempt was made; retries go on until 72 hours after it.' })
  firstAttemptAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the next attempt is due (PENDING after a failed attempt).' })
  nextAttemptAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the endpoint answered 2xx; null unless DELIVERED.' })
  deliveredAt!: Date | null;

  @Field(() => DateTimeScalar, { description: 'When the delivery was queued.' })
  createdAt!: Date;
}

export const WebhookDeliveryConnection = connectionType(WebhookDeliveryType, 'WebhookDelivery');

@InputType({ description: 'A webhook endpoint to register.' })
export class CreateWebhookEndpointInput {
  @Field({ description: 'An https URL (outside production also http://localhost or http://127.0.0.1). No credentials in it: check the signature instead.' })
  url!: string;

  @Field(() => [String], { description: 'The event types to receive, or ["*"] for all.' })
  eventTypes!: string[];

  @Field(() => String, { nullable: true, description: 'A note for you (500 characters at most).' })
  description?: string | null;
}

@InputType({ description: 'Changes to an endpoint; fields left out stay as they are.' })
export class UpdateWebhookEndpointInput {
  @Field(() => ID, { description: 'Global id of the WebhookEndpoint.' })
  endpoint!: string;

  @Field(() => String, { nullable: true, description: 'A new https URL (same rules as when registering).' })
  url?: string | null;

  @Field(() => [String], { nullable: true, description: 'The new event types to receive, or ["*"] for all; replaces the list.' })
  eventTypes?: string[] | null;

  @Field(() => String, { nullable: true, description: 'An empty string clears it.' })
  description?: string | null;

  @Field(() => Boolean, { nullable: true, description: 'False stops deliveries (those waiting are CANCELED); true turns it back on.' })
  enabled?: boolean | null;
}

@InputType({ description: 'A new signing secret for an endpoint.' })
export class RotateWebhookSecretInput {
  @Field(() => ID, { description: 'Global id of the WebhookEndpoint.' })
  endpoint!: string;

  @Field(() => Int, { nullable: true, description: 'Seconds the current secret keeps signing beside the new one, 0 to 86400 (default 86400: 24 hours). 0 when it leaked.' })
  previousSecretExpiresIn?: number | null;
}

@InputType({ description: 'An endpoint to delete, with its delivery history.' })
export class DeleteWebhookEndpointInput {
  @Field(() => ID, { description: 'Global id of the WebhookEndpoint.' })
  endpoint!: string;
}

@InputType({ description: 'An event to send again.' })
export class ReplayWebhookEventInput {
  @Field(() => ID, { description: 'Global id of the Event.' })
  event!: string;

  @Field(() => ID, { nullable: true, description: 'Global id of one enabled WebhookEndpoint; without it, every enabled endpoint subscribed to the event’s type.' })
  endpoint?: string | null;
}

@ObjectType({ description: 'The endpoint registered, and its signing secret: shown this once, store it now.' })
export class CreateWebhookEndpointPayload {
  @Field(() => WebhookEndpointType, { nullable: true, description: 'The endpoint registered; null when refused.' })
  endpoint!: WebhookEndpointType | null;

  @Field(() => String, { nullable: true, description: 'The signing secret (whsec_…). It is never shown again.' })
  secret!: string | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The endpoint as changed.' })
export class UpdateWebhookEndpointPayload {
  @Field(() => WebhookEndpointType, { nullable: true, description: 'The endpoint after the change; null when refused.' })
  endpoint!: WebhookEndpointType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The endpoint and its new signing secret: shown this once, store it now.' })
export class RotateWebhookSecretPayload {
  @Field(() => WebhookEndpointType, { nullable: true, description: 'The endpoint after the rotation (see previousSecretExpiresAt); null when refused.' })
  endpoint!: WebhookEndpointType | null;

  @Field(() => String, { nullable: true, description: 'The new signing secret (whsec_…). It is never shown again.' })
  secret!: string | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The result of deleteWebhookEndpoint.' })
export class DeleteWebhookEndpointPayload {
  @Field(() => ID, { nullable: true, description: 'Global id of the endpoint deleted.' })
  deletedEndpointId!: string | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The fresh deliveries of the event, sent within a moment.' })
export class ReplayWebhookEventPayload {
  @Field(() => [WebhookDeliveryType], { description: 'One new delivery (replay: true) per endpoint the event is sent to; empty when refused.' })
  deliveries!: WebhookDeliveryType[];

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}
