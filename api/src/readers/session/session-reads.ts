import type { NoticedCache } from '../../db/noticed-cache.js';

/**
 * What a card session reads and seldom changes, kept per API process (db/noticed-cache.ts): the
 * city's host signing key with its CA certificate (pki/host-key.ts), card profiles
 * (card-profile.service.ts) and active card master key rows (key-store.ts). Triggers on their
 * tables notify this channel at commit (migration 20261207002600), and every process drops what it
 * kept: a host key or master key retired in one process is never used by another after the notice.
 */
export const SESSION_READS_CHANNEL = 'onecard_session_reads';

declare module '../../graphql/context.js' {
  interface GraphQLContext {
    /** The process's cache of session reads (createHttpApp puts it here). */
    sessionReads?: NoticedCache;
  }
}
