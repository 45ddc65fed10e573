import type { MikroORM } from '@mikro-orm/postgresql';
import express, { type Request, type Response, Router } from 'express';
import type Provider from 'oidc-provider';
import { authenticateCardholder } from './cardholders.service.js';
import { oauthPage } from './pages.js';
import { escapeHtml } from './provider.js';
import { SCOPES } from './scopes.js';
import { type AuthThrottle, waitText } from './throttle.js';

function loginPage(uid: string, clientName: string, error?: string): string {
  return oauthPage(
    'Sign in to OneCard',
    `<p><strong>${escapeHtml(clientName)}</strong> wants to use your city card.</p>
${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/oauth/interaction/${escapeHtml(uid)}/login">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
  );
}

function consentPage(uid: string, clientName: string, scopes: string[]): string {
  const items = scopes.map((s) => `<li><code>${escapeHtml(s)}</code>: ${escapeHtml(SCOPES[s]?.description ?? s)}</li>`).join('');
  return oauthPage(
    'Allow access?',
    `<p><strong>${escapeHtml(clientName)}</strong> asks to:</p><ul>${items}</ul>
<form method="post" action="/oauth/interaction/${escapeHtml(uid)}/confirm">
<button type="submit" name="decision" value="allow">Allow</button><button type="submit" name="decision" value="deny">Deny</button></form>`,
  );
}

/** Login and consent for cardholder apps (authorization code + PKCE); mounted before the provider. */
export function interactionRoutes(provider: Provider, orm: MikroORM, throttle: AuthThrottle): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '10kb' });

  const clientName = async (clientId: unknown) => (await provider.Client.find(String(clientId)))?.clientName ?? String(clientId);

  router.get('/interaction/:uid', async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res);
    const name = await clientName(details.params.client_id);
    if (details.prompt.name === 'login') {
      res.type('html').send(loginPage(details.uid, name));
      return;
    }
    const missing = Object.values((details.prompt.details.missingResourceScopes ?? {}) as Record<string, string[]>).flat();
    res.type('html').send(consentPage(details.uid, name, missing));
  });

  router.post('/interaction/:uid/login', form, async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res);
    const username = String(req.body?.username ?? '');
    // Per the name typed, whether or not such an account exists, so the wait reveals nothing.
    const keys = throttle.signInKeys(username, req.ip ?? 'unknown');
    const wait = await throttle.retryAfter(orm.em.fork(), keys);
    if (wait > 0) {
      res.status(429).setHeader('retry-after', String(wait)).type('html').send(loginPage(details.uid, await clientName(details.params.client_id), `Too many sign-in attempts. Wait ${waitText(wait)} and try again.`));
      return;
    }
    const holder = await authenticateCardholder(orm.em.fork(), username, String(req.body?.password ?? ''));
    if (!holder) {
      await throttle.failed(orm.em.fork(), keys);
      res.status(401).type('html').send(loginPage(details.uid, await clientName(details.params.client_id), 'Wrong username or password.'));
      return;
    }
    await throttle.succeeded(orm.em.fork(), keys[0]!);
    await provider.interactionFinished(req, res, { login: { accountId: holder.id } }, { mergeWithLastSubmission: false });
  });

  router.post('/interaction/:uid/confirm', form, async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res);
    if (req.body?.decision !== 'allow') {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The cardholder declined.' }, { mergeWithLastSubmission: false });
      return;
    }
    const accountId = details.session!.accountId;
    const grant = details.grantId ? (await provider.Grant.find(details.grantId))! : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
    const promptDetails = details.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (promptDetails.missingOIDCScope) grant.addOIDCScope(promptDetails.missingOIDCScope.join(' '));
    for (const [indicator, scopes] of Object.entries(promptDetails.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  });

  return router;
}
