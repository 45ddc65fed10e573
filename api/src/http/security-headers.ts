import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import { OAUTH_PAGE_STYLE } from '../auth/pages.js';
import { GRAPHIQL_PAGE_STYLE } from '../graphql/graphiql.js';

/** The CSP source of one inline <style> or <script> of ours: its hash, so no 'unsafe-inline'. */
function hashSource(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * Helmet's headers on every response (docs/security.md#headers-and-csp), with a Content-Security-
 * Policy that allows only our own origin: GraphiQL is served from it (graphql/graphiql.ts), its
 * fonts and images are inlined as data: URLs, and the only inline styles are the two of our pages,
 * allowed by hash. Scripts: our own files only; oidc-provider adds the hash of its form_post script
 * to the header itself when it writes that page.
 */
export function securityHeaders(opts: { https: boolean }): { everywhere: RequestHandler; oauth: RequestHandler } {
  const oauthDirectives: Record<string, string[]> = {
    'default-src': ["'self'"],
    'base-uri': ["'none'"],
    'script-src': ["'self'"],
    'script-src-attr': ["'none'"],
    'style-src': ["'self'", hashSource(OAUTH_PAGE_STYLE), hashSource(GRAPHIQL_PAGE_STYLE)],
    'img-src': ["'self'", 'data:'],
    'font-src': ["'self'", 'data:'],
    'connect-src': ["'self'"],
    'object-src': ["'none'"],
    'frame-ancestors': ["'none'"],
    // Only where we are served over https: on a developer's http://localhost it would break every asset.
    ...(opts.https ? { 'upgrade-insecure-requests': [] } : {}),
  };
  const directives = { ...oauthDirectives, 'form-action': ["'self'"] };
  const common = {
    strictTransportSecurity: opts.https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    frameguard: { action: 'deny' as const },
    referrerPolicy: { policy: 'no-referrer' as const },
  };
  return {
    everywhere: helmet({ ...common, contentSecurityPolicy: { useDefaults: false, directives } }),
    // The authorization server's pages end by sending the browser to the client's redirect URI (a
    // redirect after the consent form, or oidc-provider's form_post page): no form-action there.
    oauth: helmet({ ...common, contentSecurityPolicy: { useDefaults: false, directives: oauthDirectives } }),
  };
}
