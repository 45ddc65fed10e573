import { defineMachine } from '../lifecycle/machine.js';

export type DeliveryStatus = 'PENDING' | 'DELIVERED' | 'FAILED' | 'CANCELED';

/**
 * A delivery of one event to one endpoint (lifecycle/machine.ts): PENDING while it is tried, then
 * DELIVERED, FAILED after the whole retry period, or CANCELED when its endpoint stops taking events.
 * Each attempt has its own row (webhook_attempt); the moves are in status_history. A replay is a new
 * delivery.
 */
export const DELIVERY_TRANSITIONS: Readonly<Record<DeliveryStatus, readonly DeliveryStatus[]>> = {
  PENDING: ['DELIVERED', 'FAILED', 'CANCELED'],
  DELIVERED: [],
  FAILED: [],
  CANCELED: [],
};

export const deliveryMachine = defineMachine<DeliveryStatus>({ name: 'webhook_delivery', table: 'webhook_delivery', initial: ['PENDING'], transitions: DELIVERY_TRANSITIONS });
