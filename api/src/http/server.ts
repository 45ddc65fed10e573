import { createServer, type RequestListener, type Server } from 'node:http';
import type { HttpLimits } from '../config/config.js';

/** A keep-alive connection serves at most this many requests, then closes, so none is held forever. */
export const MAX_REQUESTS_PER_SOCKET = 1000;

/**
 * The HTTP server with its bounds against slow and idle clients (docs/security.md#http-limits).
 * Node's own defaults are far too lax for a public API: 60 s for headers, 5 min for a whole
 * request, no connection cap, and the timeouts checked only every 30 s.
 */
export function createHttpServer(limits: HttpLimits, listener?: RequestListener): Server {
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    // Counts until the whole body is read, so a body trickled a byte at a time is cut at this.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often Node looks for connections past the two time-outs above (its default is 30 s, which
    // would let a slow client outstay them by that much).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
  });
  if (listener) server.on('request', listener);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
  // No traffic either way for this long (a client that connects and sends nothing, or stops reading): close.
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
  return server;
}
