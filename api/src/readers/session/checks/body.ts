import { SessionError } from '../session.errors.js';

/** The body is a JSON object. */
export function parseBody(text: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new SessionError('MALFORMED_MESSAGE', 'the body is not JSON').at('body');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new SessionError('MALFORMED_MESSAGE', 'the body is a JSON object').at('body');
  return body as Record<string, unknown>;
}

/** The card's answers, exactly as many as the host asked for. */
export function responsesOf(body: Record<string, unknown>, count: number): string[] {
  const responses = body.responses;
  if (!Array.isArray(responses) || responses.length !== count) throw new SessionError('MALFORMED_MESSAGE', `expected ${count} card responses`).at('body');
  return responses as string[];
}
