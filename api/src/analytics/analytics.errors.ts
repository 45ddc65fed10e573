import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';

/** A refusal of the analytics context; resolvers turn it into a userError. */
export class AnalyticsError extends DomainError<'INVALID_INPUT'> {
  constructor(message: string, field?: string) {
    super('INVALID_INPUT', message, UserErrorCode.INVALID_INPUT, field);
  }
}
