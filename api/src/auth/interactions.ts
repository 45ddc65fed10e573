import type { MikroORM } from '@mikro-orm/postgresql';
import express, { type Request, type Response, Router } from 'express';
import type Provider from 'oidc-provider';
import { authenticateCardholder } from './cardholders.service.js';
import { findClient } from './clients.service.js';
import { authenticatePartyUser, chooseOwnPassword, MIN_PASSWORD_LENGTH } from './party-users.service.js';
import { oauthPage } from './pages.js';
import { escapeHtml } from './provider.js';
import { SCOPES } from './scopes.js';
import { type AuthThrottle, waitText } from './throttle.js';

/** Who signs in on the page: a cardholder (for an app), or a party's person (for the console). */
type SignInFor = { name: string; cardholder: boolean };

function loginPage(uid: string, client: SignInFor, error?: string): string {
  const lead = client.cardholder ? `<strong>${escapeHtml(client.name)}</strong> wants to use your city card.` : `Sign in to <strong>${escapeHtml(client.name)}</strong> with your user name.`;
  return oauthPage(
    'Sign in to OneCard',
    `<p>${lead}</p>
${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/oauth/interaction/${escapeHtml(uid)}/login">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`,
  );
}

/**
 * A party user made with an initial password (createPartyUser, `onecard users create`) chooses their
 * own before the first sign-in finishes. The current password is asked again: these pages keep no
 * state between forms, and the check runs under the same throttle as the sign-in.
 */
function choosePasswordPage(uid: string, username: string, error?: string): string {
  return oauthPage(
    'Choose your password',
    `<p>You signed in with the password you were given. Choose your own to go on; the one you were given stops working.</p>
${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/oauth/interaction/${escapeHtml(uid)}/password">
<input type="hidden" name="username" value="${escapeHtml(username)}">
<label for="current">Password you were given</label><input id="current" name="current" type="password" autocomplete="current-password" required autofocus>
<label for="next">New password (at least ${MIN_PASSWORD_LENGTH} characters)</label><input id="next" name="next" type="password" autocomplete="new-password" minlength="${MIN_PASSWORD_LENGTH}" required>
<label for="repeated">New password again</label><input id="repeated" name="repeated" type="password" autocomplete="new-password" required>
<button type="submit">Save and sign in</button></form>`,
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
  const signInFor = async (clientId: unknown): Promise<SignInFor> => ({
    name: await clientName(clientId),
    cardholder: (await findClient(orm.em.fork(), String(clientId)))?.kind === 'CARDHOLDER_APP',
  });
  /**
   * A cardholder app signs in cardholders; a party's sign-in client signs in that client's own users
   * (party_user), never a cardholder and never another party's user: the token carries the client's
   * kind and tenant, so the wrong person would act as that party.
   */
  const authenticate = async (clientId: unknown, username: string, password: string) => {
    const client = await findClient(orm.em.fork(), String(clientId));
    if (client?.kind === 'CARDHOLDER_APP') return authenticateCardholder(orm.em.fork(), username, password);
    return authenticatePartyUser(orm.em.fork(), String(clientId), username, password);
  };

  router.get('/interaction/:uid', async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res);
    const name = await clientName(details.params.client_id);
    if (details.prompt.name === 'login') {
      res.type('html').send(loginPage(details.uid, await signInFor(details.params.client_id)));
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
      res.status(429).setHeader('retry-after', String(wait)).type('html').send(loginPage(details.uid, await signInFor(details.params.client_id), `Too many sign-in attempts. Wait ${waitText(wait)} and try again.`));
      return;
    }
    const account = await authenticate(details.params.client_id, username, String(req.body?.password ?? ''));
    if (!account) {
      await throttle.failed(orm.em.fork(), keys);
      res.status(401).type('html').send(loginPage(details.uid, await signInFor(details.params.client_id), 'Wrong username or password.'));
      return;
    }
    await throttle.succeeded(orm.em.fork(), keys[0]!);
    // An initial password signs nobody in: it only leads to choosing one's own.
    if ('mustChangePassword' in account && account.mustChangePassword) {
      res.type('html').send(choosePasswordPage(details.uid, account.username));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.id } }, { mergeWithLastSubmission: false });
  });

  router.post('/interaction/:uid/password', form, async (req: Request, res: Response) => {
    const details = await provider.interactionDetails(req, res);
    const username = String(req.body?.username ?? '');
    const keys = throttle.signInKeys(username, req.ip ?? 'unknown');
    const wait = await throttle.retryAfter(orm.em.fork(), keys);
    if (wait > 0) {
      res.status(429).setHeader('retry-after', String(wait)).type('html').send(choosePasswordPage(details.uid, username, `Too many sign-in attempts. Wait ${waitText(wait)} and try again.`));
      return;
    }
    const body = (name: string) => String(req.body?.[name] ?? '');
    const chosen = await chooseOwnPassword(orm.em.fork(), String(details.params.client_id), username, body('current'), body('next'), body('repeated'));
    if ('refused' in chosen) {
      if (chosen.wrongPassword) await throttle.failed(orm.em.fork(), keys);
      res.status(chosen.wrongPassword ? 401 : 400).type('html').send(choosePasswordPage(details.uid, username, chosen.refused));
      return;
    }
    await throttle.succeeded(orm.em.fork(), keys[0]!);
    await provider.interactionFinished(req, res, { login: { accountId: chosen.id } }, { mergeWithLastSubmission: false });
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
