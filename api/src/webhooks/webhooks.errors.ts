export type WebhookErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'INVALID_WEBHOOK_URL' | 'UNKNOWN_EVENT_TYPE' | 'WEBHOOK_ENDPOINT_LIMIT_REACHED' | 'WEBHOOK_ENDPOINT_DISABLED';

/** A refusal of the webhooks context; resolvers turn it into a userError. */
export class WebhookError extends Error {
  constructor(
    readonly code: WebhookErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}
