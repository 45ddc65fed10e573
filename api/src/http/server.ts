import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
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
  server.on('clientError', answerAndClose);
  return server;
}

const CLIENT_ERROR_STATUS: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
};

/**
 * A request that timed out or did not parse: the status Node itself would send, then the socket is
 * destroyed. Node's own handling (without this listener) leaves a socket that never sent a byte
 * open after the headers time-out, which is the idle-socket hole.
 */
function answerAndClose(err: NodeJS.ErrnoException, socket: Socket): void {
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !answering?.headersSent) {
    // Written at once (small, and the socket is not corked), then closed, as Node's own handler does.
    socket.write(`HTTP/1.1 ${CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
  }
  socket.destroy();
}
