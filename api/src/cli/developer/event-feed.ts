import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from './api-client.js';

/** One event as the `events` query lists it: the very fields a webhook delivery's body carries. */
export interface FeedEvent {
  id: string;
  type: string;
  created: string;
  subject: string;
  data: Record<string, unknown>;
}

const EVENTS = `query DeveloperEventFeed($after: String, $types: [String!], $first: Int!) {
  events(after: $after, types: $types, first: $first) {
    edges { node { id type created subject data } }
    pageInfo { hasNextPage endCursor }
  }
}`;

type Page = { events: { edges: { node: FeedEvent }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };

export interface FollowOptions {
  /** Only these event types (the `types` argument of `events`). */
  types?: string[];
  /** Also every event published before the command started (default: only new ones). */
  fromStart?: boolean;
  /** How often to ask for new events once caught up. */
  intervalMs?: number;
  signal: AbortSignal;
  /** Called once the feed is at the present: events after this point are new. */
  onReady?: () => void | Promise<void>;
  onEvent: (event: FeedEvent) => void | Promise<void>;
}

/**
 * Follows this client's events through the public `events` catch-up query (docs/webhooks.md): pages
 * forward from a cursor and, once at the end, polls for what was published since. Events appear
 * there in publication order and never behind one already listed, so nothing is skipped. Starting
 * "now" means paging to the end once without printing. Resolves when `signal` aborts.
 */
export async function followEvents(api: ApiClient, opts: FollowOptions): Promise<void> {
  // A page of n events costs 10·n + 1 cost points: 100 while catching up (1,001), 10 once at the
  // present (101), so a poll a second stays within a bucket's refill (500 points a second by default).
  const page = async (after: string | null, first: number) => (await api.request<Page>(EVENTS, { after, types: opts.types?.length ? opts.types : null, first })).events;
  let after: string | null = null;
  if (!opts.fromStart) {
    for (;;) {
      const skipped = await page(after, 100);
      after = skipped.pageInfo.endCursor ?? after;
      if (!skipped.pageInfo.hasNextPage) break;
    }
  }
  await opts.onReady?.();
  let behind = !!opts.fromStart;
  while (!opts.signal.aborted) {
    const next = await page(after, behind ? 100 : 10);
    behind = next.pageInfo.hasNextPage;
    for (const { node } of next.edges) {
      if (opts.signal.aborted) return;
      await opts.onEvent(node);
    }
    after = next.pageInfo.endCursor ?? after;
    if (!next.pageInfo.hasNextPage) await sleep(opts.intervalMs ?? 1000, undefined, { signal: opts.signal }).catch(() => undefined);
  }
}
