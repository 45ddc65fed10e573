import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

export type WebhookErrorCode = 'NOT_FOUND' | 'INVALID_INPUT' | 'INVALID_WEBHOOK_URL' | 'UNKNOWN_EVENT_TYPE' | 'WEBHOOK_ENDPOINT_LIMIT_REACHED' | 'WEBHOOK_ENDPOINT_DISABLED';

const USER_ERROR_CODES: Record<WebhookErrorCode, UserErrorCode> = {
  NOT_FOUND: UserErrorCode.NOT_FOUND,
  INVALID_INPUT: UserErrorCode.INVALID_INPUT,
  INVALID_WEBHOOK_URL: UserErrorCode.INVALID_WEBHOOK_URL,
  UNKNOWN_EVENT_TYPE: UserErrorCode.UNKNOWN_EVENT_TYPE,
  WEBHOOK_ENDPOINT_LIMIT_REACHED: UserErrorCode.WEBHOOK_ENDPOINT_LIMIT_REACHED,
  WEBHOOK_ENDPOINT_DISABLED: UserErrorCode.WEBHOOK_ENDPOINT_DISABLED,
};

/** A refusal of the webhooks context; resolvers turn it into a userError. */
export class WebhookError extends DomainError<WebhookErrorCode> {
  constructor(code: WebhookErrorCode, message: string, field?: string) {
    super(code, message, USER_ERROR_CODES[code], field);
  }
}
